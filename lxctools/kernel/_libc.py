"""libc handle, syscall numbers and the one errno helper shared by the kernel wrappers."""

from __future__ import annotations

import ctypes
import os

from lxctools.errors import KernelError, PermissionDeniedError

libc = ctypes.CDLL(None, use_errno=True)

# x86_64 numbers for syscalls glibc 2.36 has no wrapper for (or whose wrapper we avoid).
SYS_pivot_root = 155
SYS_setns = 308
SYS_pidfd_open = 434
SYS_pidfd_send_signal = 424
SYS_pidfd_getfd = 438
SYS_clone3 = 435
SYS_open_tree = 428
SYS_move_mount = 429
SYS_fsopen = 430
SYS_mount_setattr = 442
SYS_openat2 = 437
SYS_bpf = 321
SYS_seccomp = 317
SYS_capget = 125
SYS_capset = 126

_syscall = libc.syscall
_syscall.restype = ctypes.c_long


def check(result: int, what: str) -> int:
    """Raise KernelError for a -1 result, with errno and a message naming the call."""
    if result == -1:
        err = ctypes.get_errno()
        text = f"{what}: {os.strerror(err)}"
        if err == 1:  # EPERM
            raise PermissionDeniedError(text, hint="pyl needs root (or the capability this call wants)")
        raise KernelError(text, err)
    return result


def syscall(number: int, *args: object, what: str) -> int:
    return check(_syscall(number, *args), what)
