"""Inode flags, as chattr(1) sets them (FS_IOC_GETFLAGS / FS_IOC_SETFLAGS): fcntl.ioctl, no ctypes."""

from __future__ import annotations

import fcntl
import struct

FS_IOC_GETFLAGS = 0x80086601   # _IOR('f', 1, long); the kernel moves an int either way
FS_IOC_SETFLAGS = 0x40086602   # _IOW('f', 2, long)
FS_IMMUTABLE_FL = 0x00000010   # chattr +i
FS_APPEND_FL = 0x00000020      # chattr +a


def get_flags(fd: int) -> int:
    return struct.unpack("i", fcntl.ioctl(fd, FS_IOC_GETFLAGS, b"\0" * 4))[0]


def set_flags(fd: int, flags: int) -> None:
    fcntl.ioctl(fd, FS_IOC_SETFLAGS, struct.pack("i", flags))
