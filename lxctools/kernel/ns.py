"""Namespaces, process control and pidfds: unshare, setns, sethostname, prctl, pidfd_*."""

from __future__ import annotations

import ctypes
import os
from _signal import SIGCHLD  # _signal, not signal: no enum import

from lxctools.kernel._libc import (
    SYS_clone3, SYS_pidfd_open, SYS_pidfd_send_signal, SYS_setns, check, libc, syscall,
)

CLONE_NEWTIME = 0x00000080
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

# /proc/PID/ns/<name> -> clone flag. Order is the order pyl joins them in (attach): user first so
# the later setns calls are checked against the container's user namespace; mnt last because it
# changes how /proc/PID/ns paths resolve.
NAMESPACES: dict[str, int] = {
    "user": CLONE_NEWUSER,
    "cgroup": CLONE_NEWCGROUP,
    "ipc": CLONE_NEWIPC,
    "uts": CLONE_NEWUTS,
    "net": CLONE_NEWNET,
    "pid": CLONE_NEWPID,
    "time": CLONE_NEWTIME,
    "mnt": CLONE_NEWNS,
}

CLONE_INTO_CGROUP = 0x200000000

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_NAME = 15
PR_SET_CHILD_SUBREAPER = 36

libc.unshare.argtypes = [ctypes.c_int]
libc.sethostname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
libc.setdomainname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
libc.personality.argtypes = [ctypes.c_ulong]


def unshare(flags: int) -> None:
    check(libc.unshare(flags), "unshare")


def setns(fd: int, nstype: int = 0) -> None:
    syscall(SYS_setns, ctypes.c_int(fd), ctypes.c_int(nstype), what="setns")


def sethostname(name: str) -> None:
    raw = name.encode()
    check(libc.sethostname(raw, len(raw)), "sethostname")


def setdomainname(name: str) -> None:
    raw = name.encode()
    check(libc.setdomainname(raw, len(raw)), "setdomainname")


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    return check(libc.prctl(option, arg2, arg3, arg4, arg5), f"prctl({option})")


def set_child_subreaper() -> None:
    prctl(PR_SET_CHILD_SUBREAPER, 1)


def set_pdeathsig(signum: int) -> None:
    prctl(PR_SET_PDEATHSIG, signum)


def set_dumpable(dumpable: bool) -> None:
    prctl(PR_SET_DUMPABLE, int(dumpable))


def set_process_name(name: str) -> None:
    """Set the comm name (15 bytes) shown by ps -o comm / top."""
    buf = ctypes.create_string_buffer(name.encode()[:15])
    check(libc.prctl(PR_SET_NAME, ctypes.cast(buf, ctypes.c_void_p).value or 0, 0, 0, 0), "prctl(PR_SET_NAME)")


def personality(persona: int) -> int:
    return check(libc.personality(persona), "personality")


def pidfd_open(pid: int) -> int:
    return syscall(SYS_pidfd_open, ctypes.c_int(pid), ctypes.c_uint(0), what=f"pidfd_open({pid})")


def pidfd_send_signal(pidfd: int, signum: int) -> None:
    syscall(SYS_pidfd_send_signal, ctypes.c_int(pidfd), ctypes.c_int(signum), None, ctypes.c_uint(0),
            what="pidfd_send_signal")


def open_ns(pid: int, name: str) -> int:
    return os.open(f"/proc/{pid}/ns/{name}", os.O_RDONLY | os.O_CLOEXEC)


class _CloneArgs(ctypes.Structure):
    """struct clone_args (linux/sched.h), up to the cgroup field (CLONE_ARGS_SIZE_VER2)."""
    _fields_ = [(field, ctypes.c_uint64) for field in (
        "flags", "pidfd", "child_tid", "parent_tid", "exit_signal", "stack", "stack_size", "tls",
        "set_tid", "set_tid_size", "cgroup")]


def clone3(flags: int = 0, *, cgroup_fd: int | None = None) -> int:
    """fork() as clone3: the child born in the new namespaces of FLAGS (CLONE_NEW*) and, with
    CGROUP_FD, in that cgroup2 directory (CLONE_INTO_CGROUP, Linux 5.7+). Returns 0 in the
    child, its PID in the parent (SIGCHLD when it exits).

    Why a cgroup fd: writing a PID to a cgroup2 ``cgroup.procs`` takes cgroup_threadgroup_rwsem
    for writing, and that waits for an RCU grace period (5-10 ms on a small VM); a child born in
    the cgroup takes it only for reading. Why namespace flags: a child born in a new PID
    namespace is its PID 1 without a first child in between (unshare(CLONE_NEWPID) only moves
    the caller's later children). Only for a single-threaded caller: unlike os.fork(), neither
    CPython's after-fork work (os.register_at_fork hooks, thread states) nor glibc's runs in the
    child, which matters only when other threads exist or those hooks are relied on. Raises
    KernelError when the kernel refuses (E2BIG, EBUSY for a cgroup with controllers and
    children...)."""
    if cgroup_fd is not None:
        flags |= CLONE_INTO_CGROUP
    args = _CloneArgs(flags=flags, exit_signal=SIGCHLD, cgroup=cgroup_fd or 0)
    return syscall(SYS_clone3, ctypes.byref(args), ctypes.c_size_t(ctypes.sizeof(args)), what="clone3")


def fork_into_cgroup(cgroup_fd: int) -> int:
    """clone3 into the cgroup2 directory open as CGROUP_FD, no new namespaces (see clone3)."""
    return clone3(cgroup_fd=cgroup_fd)


def within_net_namespace(target: int, func):
    """FUNC's result, called with this thread in the network namespace of fd TARGET: setns
    there and back (a netlink socket made meanwhile stays bound to that namespace)."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        setns(target, CLONE_NEWNET)
        try:
            return func()
        finally:
            setns(own, CLONE_NEWNET)
    finally:
        os.close(own)
