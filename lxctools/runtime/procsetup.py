"""Per-process settings of a container's processes: inherited fds, lxc.prlimit.*, lxc.sysctl.*,
lxc.proc.*."""

from __future__ import annotations

import os
import resource
from typing import Any, Mapping

from lxctools.errors import StartError
from lxctools.kernel import signals

# Linux RLIMIT_* numbers (asm-generic/resource.h): the resource module lacks some (LOCKS, RTTIME...).
PRLIMITS = {
    "cpu": 0, "fsize": 1, "data": 2, "stack": 3, "core": 4, "rss": 5, "nproc": 6, "nofile": 7,
    "memlock": 8, "as": 9, "locks": 10, "sigpending": 11, "msgqueue": 12, "nice": 13, "rtprio": 14,
    "rttime": 15,
}


def preload_for_children(seccomp: bool) -> None:
    """Import in the supervisor what the processes it forks for a start or an attach import
    before they exec: done once here, not in every child, on the critical path of every start
    and attach (and paid twice there: the import, then copy-on-write faults). Cheap to call
    again. SECCOMP: load libseccomp too (the container's confinement needs it)."""
    import shlex  # noqa: F401  (these two: what hooks imports once it has a command to run)
    import subprocess  # noqa: F401
    import lxctools.kernel.fds  # noqa: F401  (close_other_fds, first thing in every child)
    import lxctools.runtime.appinit  # noqa: F401
    import lxctools.runtime.hooks  # noqa: F401
    import lxctools.runtime.security  # noqa: F401
    if seccomp:
        from lxctools.kernel import seccomp as libseccomp
        libseccomp.available()


def _limit(text: str) -> int:
    return resource.RLIM_INFINITY if text in ("unlimited", "infinity") else int(text)


def parse_prlimit(name: str, value: str) -> tuple[int, int, int]:
    if name not in PRLIMITS:
        raise StartError(f"lxc.prlimit.{name}: unknown resource (one of {', '.join(sorted(PRLIMITS))})")
    soft, _, hard = value.partition(":")
    try:
        soft_v = _limit(soft.strip())
        hard_v = _limit(hard.strip()) if hard else soft_v
    except ValueError:
        raise StartError(f"lxc.prlimit.{name}: '{value}' is not soft[:hard] numbers or unlimited") from None
    return PRLIMITS[name], soft_v, hard_v


def leave_supervisor() -> None:
    """First thing in a process forked from the supervisor (a start's PID 1, an attached
    process, the netlink worker): its wakeup fd goes (the fd is about to be closed) and its
    handlers too (they would run the supervisor's code here), and every signal the supervisor
    ignores or blocks returns to its default (kernel.signals.restore_defaults says why).

    The process is also made non-dumpable, inherited by what it forks and reset by execve:
    such a fork carries the supervisor's memory (every container's console scrollback), its
    environment and the host's python as /proc/PID/exe, and some of them become visible in a
    container's PID namespace before they exec (an attached command; pyl-execute's init, which
    never execs). Non-dumpable, their /proc/PID/{exe,environ,maps,mem,fd/N,cwd,root} and ptrace
    need CAP_SYS_PTRACE, which the default config drops (CVE-2019-5736, CVE-2016-9962)."""
    import signal
    from lxctools.kernel import ns
    ns.set_dumpable(False)
    signal.set_wakeup_fd(-1)
    signals.restore_defaults()


def close_other_fds(keep: set[int]) -> None:
    """Close every fd above stdio that is not in keep: nothing of the supervisor's (its socket,
    other containers' pty masters) may reach a container."""
    from lxctools.kernel.fds import close_fds_except
    from lxctools.log import log
    if log.fd is not None and log.fd not in keep:
        log.fd = None  # its number is about to be free: a later log line must not land in whatever reuses it
    close_fds_except(keep)


def apply_prlimits(values: Mapping[str, Any]) -> None:
    for key, value in values.items():
        if key.startswith("lxc.prlimit."):
            name = key.removeprefix("lxc.prlimit.")
            res, soft, hard = parse_prlimit(name, str(value))
            try:
                resource.setrlimit(res, (soft, hard))
            except (ValueError, OSError) as err:
                raise StartError(f"lxc.prlimit.{name} = {value}: {err}") from None


def apply_sysctls(values: Mapping[str, Any]) -> None:
    """Write lxc.sysctl.* through the container's own /proc (after the rootfs is in place)."""
    for key, value in values.items():
        if key.startswith("lxc.sysctl."):
            name = key.removeprefix("lxc.sysctl.")
            path = "/proc/sys/" + name.replace(".", "/")
            _write(path, str(value), key)


def apply_proc_settings(values: Mapping[str, Any], pid: int) -> None:
    for key, value in values.items():
        if key.startswith("lxc.proc."):
            name = key.removeprefix("lxc.proc.")
            if "/" in name or name.startswith("."):
                raise StartError(f"{key}: invalid /proc file name")
            _write(f"/proc/self/{name}", str(value), key)


def _write(path: str, value: str, key: str) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError as err:
        # /proc/sys is read-only once the container's mounts are done; sysctls are written
        # before that remount by the rootfs code when possible; otherwise say why it failed.
        raise StartError(f"{key} = {value}: cannot open {path}: {err.strerror}") from None
    try:
        os.write(fd, value.encode())
    except OSError as err:
        raise StartError(f"{key} = {value}: {err.strerror}") from None
    finally:
        os.close(fd)
