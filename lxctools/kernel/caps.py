"""Capabilities and the privilege bits next to them: capget/capset (v3), the bounding and ambient
sets, no_new_privs, securebits, and the capability name <-> number table.

Names are LXC's spelling: lower case, no ``cap_`` prefix (``sys_admin``), as ``lxc.cap.drop`` uses.
Masks are plain 64-bit ints with bit N set for capability N.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from lxctools.errors import KernelError
from lxctools.kernel._libc import SYS_capget, SYS_capset, syscall
from lxctools.kernel.capnames import CAP_NAMES
from lxctools.kernel.ns import prctl

CAP_NUMBERS: dict[str, int] = {name: number for number, name in enumerate(CAP_NAMES)}
CAP_LAST_KNOWN = len(CAP_NAMES) - 1  # 40 = CAP_CHECKPOINT_RESTORE

CAP_SETPCAP = CAP_NUMBERS["setpcap"]
CAP_SYS_ADMIN = CAP_NUMBERS["sys_admin"]

_LINUX_CAPABILITY_VERSION_3 = 0x20080522

PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_GET_SECUREBITS = 27
PR_SET_SECUREBITS = 28
PR_SET_NO_NEW_PRIVS = 38
PR_GET_NO_NEW_PRIVS = 39
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_IS_SET = 1
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_LOWER = 3
PR_CAP_AMBIENT_CLEAR_ALL = 4

# include/uapi/linux/securebits.h
SECBIT_NOROOT = 1 << 0
SECBIT_NOROOT_LOCKED = 1 << 1
SECBIT_NO_SETUID_FIXUP = 1 << 2
SECBIT_NO_SETUID_FIXUP_LOCKED = 1 << 3
SECBIT_KEEP_CAPS = 1 << 4
SECBIT_KEEP_CAPS_LOCKED = 1 << 5
SECBIT_NO_CAP_AMBIENT_RAISE = 1 << 6
SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED = 1 << 7


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


@dataclass(frozen=True)
class CapSets:
    """One process's effective, permitted and inheritable sets as 64-bit masks."""

    effective: int
    permitted: int
    inheritable: int


def cap_number(name: str) -> int | None:
    """Number of a capability given as ``sys_admin``, ``CAP_SYS_ADMIN`` or ``21``; None if unknown."""
    key = name.strip().lower()
    key = key.removeprefix("cap_")
    if key in CAP_NUMBERS:
        return CAP_NUMBERS[key]
    if key.isdigit() and int(key) <= CAP_LAST_KNOWN:
        return int(key)
    return None


def cap_name(number: int) -> str:
    """LXC-style name of a capability number (``cap_N`` beyond the table)."""
    return CAP_NAMES[number] if 0 <= number <= CAP_LAST_KNOWN else f"cap_{number}"


def mask_of(numbers: Iterable[int]) -> int:
    mask = 0
    for number in numbers:
        mask |= 1 << number
    return mask


def cap_last_cap(proc_root: Path | str = "/proc") -> int:
    """The running kernel's highest capability number.

    /proc may be missing (after pivot_root, before the container mounts its own), so fall back
    to probing the bounding set: PR_CAPBSET_READ fails with EINVAL past the last capability.
    """
    try:
        return int(Path(proc_root, "sys/kernel/cap_last_cap").read_text().strip())
    except (OSError, ValueError):
        pass
    last = -1
    while last < 63:
        try:
            prctl(PR_CAPBSET_READ, last + 1)
        except KernelError:
            break
        last += 1
    return last if last >= 0 else CAP_LAST_KNOWN


def capget(pid: int = 0) -> CapSets:
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, pid)
    data = (_CapData * 2)()
    syscall(SYS_capget, ctypes.byref(header), data, what="capget")
    return CapSets(
        effective=data[0].effective | data[1].effective << 32,
        permitted=data[0].permitted | data[1].permitted << 32,
        inheritable=data[0].inheritable | data[1].inheritable << 32,
    )


def capset(effective: int, permitted: int, inheritable: int) -> None:
    """Set the calling thread's three sets (pid 0: the kernel refuses others)."""
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    for index, shift in ((0, 0), (1, 32)):
        data[index].effective = (effective >> shift) & 0xFFFFFFFF
        data[index].permitted = (permitted >> shift) & 0xFFFFFFFF
        data[index].inheritable = (inheritable >> shift) & 0xFFFFFFFF
    syscall(SYS_capset, ctypes.byref(header), data, what="capset")


def capbset_read(cap: int) -> bool:
    return bool(prctl(PR_CAPBSET_READ, cap))


def capbset_drop(cap: int) -> None:
    """Remove CAP from the bounding set (needs CAP_SETPCAP in the effective set)."""
    prctl(PR_CAPBSET_DROP, cap)


def bounding_set(last_cap: int) -> int:
    return mask_of(cap for cap in range(last_cap + 1) if capbset_read(cap))


def cap_ambient_is_set(cap: int) -> bool:
    return bool(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, cap))


def cap_ambient_raise(cap: int) -> None:
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap)


def cap_ambient_lower(cap: int) -> None:
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_LOWER, cap)


def cap_ambient_clear_all() -> None:
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)


def set_no_new_privs() -> None:
    """PR_SET_NO_NEW_PRIVS: irreversible, inherited across fork and execve."""
    prctl(PR_SET_NO_NEW_PRIVS, 1)


def get_no_new_privs() -> bool:
    return bool(prctl(PR_GET_NO_NEW_PRIVS))


def get_securebits() -> int:
    return prctl(PR_GET_SECUREBITS)


def set_securebits(bits: int) -> None:
    prctl(PR_SET_SECUREBITS, bits)
