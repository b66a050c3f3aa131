"""The supervisor's entry point: ``python -m lxctools.monitor.daemon LXCPATH RUNDIR READY_FD
[warm-net]``, spawned by the first pyl command that needs one (monitor.client._spawn).

Small on purpose. It takes the lxcpath's supervisor lock and, when a start spawned it
(warm-net), forks the netlink worker before importing the supervisor (monitor.supervisor: ~30
ms of imports with the cgroup code): pyroute2's import (~80 ms) in the worker then begins that
much sooner, and a start with no supervisor running is ~14 ms shorter. The supervisor moves the
worker along when it moves itself into pyl.monitor (pure cgroup v2).
"""

from __future__ import annotations

import os
import sys
import time

from lxctools.locking import try_flock
from lxctools.paths import Layout


def take_monitor_lock(layout: Layout, patience: float = 10.0) -> int | None:
    """The lxcpath's supervisor lock, or None when another supervisor holds it and serves.
    A holder whose socket does not answer is on its way out (its linger time ran out and it
    closed its socket, but has not exited yet): wait for its lock instead of trusting it."""
    import _socket  # not socket: it imports enum, and this runs before anything else
    deadline = time.monotonic() + patience
    while True:
        lock_fd = try_flock(layout.run_path("monitor.lock"))
        if lock_fd is not None:
            return lock_fd
        probe = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
        try:
            probe.connect(layout.run_path("monitor.sock"))
            return None
        except OSError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.005)
        finally:
            probe.close()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    layout = Layout(lxcpath=argv[0], rundir=argv[1])
    ready_fd = int(argv[2]) if len(argv) > 2 else -1
    os.makedirs(layout.run_path(), mode=0o700, exist_ok=True)
    lock_fd = take_monitor_lock(layout)  # held, open, for the supervisor's whole life
    if lock_fd is None:
        # Another supervisor for this lxcpath won the race; the client will connect to it.
        if ready_fd >= 0:
            try:
                os.write(ready_fd, b"ok\n")
            except BrokenPipeError:
                pass  # the client that spawned us was killed meanwhile: nothing to tell
        return 0
    if "warm-net" in argv[3:]:
        # Spawned by a start: it will want the worker. Unused, it leaves after its idle time.
        from lxctools.runtime.networker import WORKER
        WORKER.warm_up()
    from lxctools.monitor.supervisor import run
    return run(layout, ready_fd)


if __name__ == "__main__":
    sys.exit(main())
