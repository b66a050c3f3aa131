"""Run a host program inside a container's network namespace only (pyl-netstat -- ss ...)."""

from __future__ import annotations

import os

from lxctools.errors import KernelError, NotFoundError


def run_in_netns(pid: int, argv: list[str]) -> int:
    """Run argv (a host binary) in pid's network namespace -- only there: mounts, PIDs and the
    filesystem stay the host's, so /proc/net (a link to /proc/self/net) shows the container's
    sockets. setns happens in a forked child; returns the exit status (128+N for a signal)."""
    import shutil
    if shutil.which(argv[0]) is None:
        raise NotFoundError(f"'{argv[0]}' is not installed on the host")
    try:
        ns_fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise NotFoundError("the container's init is gone (it stopped meanwhile)") from None
    child = os.fork()
    if child == 0:
        try:
            from lxctools.kernel import ns
            ns.setns(ns_fd, ns.CLONE_NEWNET)
            os.execvp(argv[0], argv)
        except KernelError as err:
            os.write(2, f"setns into the container's network namespace: {err.message}\n".encode())
        except OSError as err:
            os.write(2, f"{argv[0]}: {err.strerror}\n".encode())
        os._exit(127)
    os.close(ns_fd)
    import signal
    # ^C reaches the tool too (same process group): let it decide, and report its status.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        _, status = os.waitpid(child, 0)
    finally:
        signal.signal(signal.SIGINT, previous)
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code
