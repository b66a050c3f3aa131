"""The netlink worker: a child of the supervisor that holds pyroute2, so the supervisor does not.

pyroute2 is the biggest thing pyl loads: ~15 MB of memory and 100-200 ms of imports (asyncio,
its NDB, every protocol it knows). The supervisor lives as long as containers run, so whatever it
imports stays resident for hours; network setup happens only at start and stop. The supervisor
therefore forks this worker on its first network operation and sends it each one (set up a
container's links, configure them inside its namespace, tear them down). The worker imports
pyroute2, answers, and is stopped by the supervisor once no network operation came for
PYL_NETWORKER_LINGER seconds (default 5): a host with 50 running containers keeps only the
supervisor. Starts in a row find the worker warm; an occasional start pays the import, as it
did before in the supervisor itself.

Requests and answers are pickled over a socketpair, each prefixed by its length. The worker
never exits by itself (the supervisor decides, so a request never meets a worker on its way
out); it dies with the supervisor (PDEATHSIG) and on EOF. Errors come back as PylErrors.
"""

from __future__ import annotations

import os
import pickle
import sys
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

from lxctools.errors import PylError

_LENGTH = 4


def _send(sock, obj: object) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    sock.sendall(len(data).to_bytes(_LENGTH, sys.byteorder) + data)


def _recv_exactly(sock, size: int) -> bytes | None:
    chunks = []
    while size:
        chunk = sock.recv(min(size, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _recv(sock) -> Any | None:
    head = _recv_exactly(sock, _LENGTH)
    if head is None:
        return None
    body = _recv_exactly(sock, int.from_bytes(head, sys.byteorder))
    return None if body is None else pickle.loads(body)


# ----------------------------------------------------------------------------- worker side --

def _setup(plans: Any, pid: int, lxcpath: str | None) -> Any:
    """Host side of every plan, then the container side from inside its network namespace
    (PID's, or a net.NetnsFd)."""
    from pathlib import Path
    from lxctools.runtime import net
    state = net.setup_host(plans, pid, lxcpath=Path(lxcpath) if lxcpath else None)
    try:
        net.within_netns(pid, lambda: net.configure_inside(plans, state))
    except BaseException:
        try:
            net.teardown(state)
        except PylError:
            pass  # the configuration error is the one worth reporting
        raise
    return state


def _setup_new_netns(sock, plans: Any, lxcpath: str | None) -> Any:
    """setup, in a network namespace made here, before the container's processes exist: the
    supervisor clones PID 1 meanwhile, which joins this namespace instead of making one. The
    namespace's fd number goes to the supervisor first; it opens it from /proc and says "ack"
    (we hold it open until then)."""
    from lxctools.runtime import net
    netns = net.new_netns()
    try:
        _send(sock, (True, int(netns)))
        if _recv(sock) != "ack":
            raise PylError("the supervisor did not take the network namespace")
        return _setup(plans, netns, lxcpath)
    finally:
        os.close(netns)


def _teardown(state: Any) -> None:
    from lxctools.runtime import net
    net.teardown(state)


def _return_phys(plans: Any, pid: int) -> None:
    from lxctools.runtime import net
    net.return_phys(plans, pid)


OPERATIONS = {"setup": _setup, "teardown": _teardown, "return_phys": _return_phys}
# Operations that talk to the supervisor on the way (they get the socket first): see begin().
PHASED = {"setup_new_netns": _setup_new_netns}


def _serve(sock) -> None:
    while True:
        request = _recv(sock)
        if request is None:
            return  # the supervisor closed its end: done
        op, args = request
        try:
            if op in PHASED:
                reply = (True, PHASED[op](sock, *args))
            else:
                reply = (True, OPERATIONS[op](*args))
        except PylError as err:
            reply = (False, err)
        except BaseException as err:  # noqa: BLE001 - anything else becomes a PylError
            # (a pyroute2 exception unpickled in the supervisor would import pyroute2 there)
            reply = (False, PylError(f"network: {type(err).__name__}: {err}"))
        _send(sock, reply)


def _worker_main(sock, keep: set[int], preload: bool = False) -> None:
    """In the forked child. Never returns. preload: load pyroute2 before the first request."""
    try:
        import signal
        from lxctools.runtime.procsetup import close_other_fds, leave_supervisor
        leave_supervisor()
        from lxctools.kernel import ns
        ns.set_pdeathsig(signal.SIGKILL)
        # The supervisor's name, which a worker forked before the supervisor named itself
        # (daemon.main) would not have inherited: ps, and the bench's memory row, count both.
        ns.set_process_name("pyl-monitord")
        close_other_fds(keep)  # nothing of the supervisor's: its locks, socket, pty masters
        from lxctools.runtime import net
        if preload:
            try:
                net.load_pyroute2()
            except PylError:
                pass  # not installed: the first request says so, to whoever asked
        _serve(sock)
    finally:
        os._exit(0)


# ------------------------------------------------------------------------- supervisor side --

class NetWorker:
    """The supervisor's handle on its worker: call() forks one when needed."""

    def __init__(self, linger: float | None = None) -> None:
        if linger is None:
            from lxctools.paths import seconds_from_env
            linger = seconds_from_env("PYL_NETWORKER_LINGER", 5.0)
        self.linger = linger
        self.pid: int | None = None
        self.pidfd: int | None = None  # waits aim at this worker even once its PID is reused
        self.sock = None
        self.last_used = 0.0

    def call(self, op: str, *args: Any) -> Any:
        for attempt in (1, 2):
            if self.sock is None:
                self._spawn()
            try:
                _send(self.sock, (op, args))
            except OSError:
                # Gone before this request (killed, or reaped by the supervisor's SIGCHLD
                # handler): nothing of it was done, so a fresh worker may take it.
                self.stop()
                if attempt == 2:
                    raise PylError(f"cannot start the netlink worker for '{op}' (see monitor.log)") from None
                continue
            try:
                reply = _recv(self.sock)
            except OSError:
                reply = None
            self.last_used = time.monotonic()
            if reply is None:
                self.stop()  # died during the request: its effect is unknown, so no retry
                raise PylError(f"the netlink worker died during '{op}' (see monitor.log)")
            ok, value = reply
            if ok:
                return value
            raise value
        raise AssertionError("unreachable")

    def begin(self, op: str, *args: Any) -> int:
        """Start a PHASED operation whose first answer is an fd number in the worker: returns
        our own fd of the same file (opened from /proc/WORKER/fd/N), while the worker goes on;
        end() collects its result. Every begin() that returned must be followed by end()."""
        if self.sock is None:
            self._spawn()
        self.last_used = time.monotonic()
        try:
            _send(self.sock, (op, args))
            first = _recv(self.sock)
        except OSError:
            first = None
        if first is None:
            self.stop()
            raise PylError(f"the netlink worker died during '{op}' (see monitor.log)")
        ok, value = first
        if not ok:
            raise value
        try:
            fd = os.open(f"/proc/{self.pid}/fd/{value}", os.O_RDONLY | os.O_CLOEXEC)
        except OSError as err:
            _send(self.sock, "no")
            self.end(op)  # its error, or ours if it had none
            raise PylError(f"cannot take the worker's fd for '{op}': {err.strerror}") from None
        _send(self.sock, "ack")
        return fd

    def end(self, op: str) -> Any:
        """The result of the operation begin() started (its error raised)."""
        try:
            reply = _recv(self.sock) if self.sock is not None else None
        except OSError:
            reply = None
        self.last_used = time.monotonic()
        if reply is None:
            self.stop()
            raise PylError(f"the netlink worker died during '{op}' (see monitor.log)")
        ok, value = reply
        if ok:
            return value
        raise value

    @property
    def alive(self) -> bool:
        """A worker is up (pyroute2 loaded): asking it costs a round trip, not an import."""
        return self.sock is not None

    def idle_deadline(self) -> float | None:
        """When the worker should go (monotonic), or None if there is none."""
        return self.last_used + self.linger if self.sock is not None else None

    def stop_if_idle(self) -> None:
        deadline = self.idle_deadline()
        if deadline is not None and time.monotonic() >= deadline:
            self.stop()

    def stop(self, patience: float = 2.0) -> None:
        """Close our end; the worker exits on EOF (or is killed after ``patience`` seconds).
        Its exit status is collected here or by the supervisor's SIGCHLD reaper, whichever
        comes first; through the pidfd, so never another child that reused its PID."""
        if self.sock is None:
            return
        self.sock.close()
        self.sock = None
        pidfd, self.pidfd, self.pid = self.pidfd, None, None
        if pidfd is None:
            return
        try:
            import select
            import signal
            if not select.select([pidfd], [], [], patience)[0]:
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
            try:
                os.waitid(os.P_PIDFD, pidfd, os.WEXITED)
            except ChildProcessError:
                pass  # already reaped by the supervisor
        finally:
            os.close(pidfd)

    def warm_up(self) -> None:
        """Fork the worker now, loading pyroute2 before anyone asks: a supervisor spawned for a
        start calls this, so the import overlaps its own start-up. A request sent meanwhile is
        read once the import is done."""
        if self.sock is None:
            self._spawn(preload=True)

    def _spawn(self, preload: bool = False) -> None:
        import socket
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        for s in (ours, theirs):
            os.set_inheritable(s.fileno(), False)
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the worker
            ours.close()
            _worker_main(theirs, {0, 1, 2, theirs.fileno()}, preload)
        theirs.close()
        self.pid, self.sock = pid, ours
        self.pidfd = os.pidfd_open(pid)
        self.last_used = time.monotonic()


# The supervisor's one worker (start_container and the teardown code reach it through here).
WORKER = NetWorker()
