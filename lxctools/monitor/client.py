"""Talking to the supervisor of an lxcpath: connect (starting it if needed) and make requests."""

from __future__ import annotations

import os
import sys
import time
from _socket import AF_UNIX, SOCK_CLOEXEC, SOCK_STREAM, socket as _unix_socket

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

from lxctools.errors import PylError, StartError
from lxctools.monitor import protocol

if TYPE_CHECKING:
    from lxctools.paths import Layout


class Connection:
    def __init__(self, sock) -> None:
        self.sock = sock
        self.reader = protocol.Reader(sock)

    def send(self, message: dict[str, Any], fds: list[int] | None = None) -> None:
        protocol.send(self.sock, message, fds)

    def receive(self) -> dict[str, Any]:
        message = self.reader.read_message()
        if message is None:
            raise PylError("the supervisor closed the connection (see its log: pyl-monitord's "
                           "monitor.log under the run dir)")
        return message

    def request(self, message: dict[str, Any], fds: list[int] | None = None) -> dict[str, Any]:
        self.send(message, fds)
        return check(self.receive())

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "Connection":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def check(reply: dict[str, Any]) -> dict[str, Any]:
    if reply.get("ok") is False:
        raise PylError(reply.get("error", "request failed"), hint=reply.get("hint"),
                       exit_code=int(reply.get("code", 1)))
    return reply


def caller_stdio() -> list[int]:
    """Our fds 0, 1, 2 to hand to a container; a closed one (cron, `<&-`) becomes /dev/null."""
    fds = []
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
            fds.append(fd)
        except OSError:
            fds.append(os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC))
    return fds


def try_connect(layout: Layout) -> Connection | None:
    # _socket's socket, not socket.socket: `import socket` alone costs ~3 ms (enum, selectors).
    sock = _unix_socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC)
    try:
        sock.connect(layout.run_path("monitor.sock"))
    except (FileNotFoundError, ConnectionRefusedError):
        sock.close()
        return None
    return Connection(sock)


def connect(layout: Layout, *, start: bool = True, for_start: bool = False) -> Connection:
    """Connect to the lxcpath's supervisor, starting one if none runs (and start is True).
    for_start: we are about to start a container; a supervisor spawned for it forks its netlink
    worker at once, so pyroute2's import overlaps the supervisor's own start-up."""
    conn = try_connect(layout)
    if conn is not None or not start:
        if conn is None:
            raise PylError("no supervisor is running for this lxcpath")
        return conn
    # Spawn again if nobody answers: the supervisor that a new one deferred to may have been
    # on its way out (its linger time over) and gone since.
    for _attempt in range(3):
        _spawn(layout, warm_net=for_start)
        for _ in range(100):
            conn = try_connect(layout)
            if conn is not None:
                return conn
            time.sleep(0.01)
    raise StartError("the supervisor did not come up (see monitor.log under the run dir)")


def _spawn(layout: Layout, *, warm_net: bool = False) -> None:
    """Run a supervisor for the lxcpath and wait until it listens (or deferred to another).
    Forked and exec'd here, not through subprocess (whose import, ~8 ms with re, enum, selectors
    and threading, a first start would pay): its own session, cwd /, stdin and stdout /dev/null,
    stderr to monitor.log, and no fd of ours but the ready pipe (inherited ones from our caller,
    a cron job's for example, must not live on in a long-running daemon)."""
    _check_supervisor_environment()
    os.makedirs(layout.run_path(), mode=0o700, exist_ok=True)
    read_fd, write_fd = os.pipe()
    write_fd = _above_stdio(write_fd)
    package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ)
    env["PYTHONPATH"] = package_root + (":" + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    for var in ("_ARGCOMPLETE", "COMP_LINE", "COMP_POINT"):
        env.pop(var, None)
    argv = [sys.executable, "-m", "lxctools.monitor.daemon", layout.lxcpath_str, layout.rundir_str, str(write_fd)]
    if warm_net:
        argv.append("warm-net")
    log_fd = _above_stdio(os.open(layout.run_path("monitor.log"),
                                  os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600))
    devnull = _above_stdio(os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC))
    from lxctools.kernel.fds import close_fds_except
    try:
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child, until exec
            try:
                os.setsid()
                os.chdir("/")
                os.dup2(devnull, 0)
                os.dup2(devnull, 1)
                os.dup2(log_fd, 2)
                close_fds_except({write_fd})
                os.set_inheritable(write_fd, True)
                os.execve(sys.executable, argv, env)
            finally:
                os._exit(127)
    finally:
        os.close(write_fd)
        os.close(log_fd)
        os.close(devnull)
    # Wait for "ok" (or EOF if it died); its own lock decides who serves when two spawn at once.
    with os.fdopen(read_fd, "rb") as ready:
        answer = ready.readline()
    # Reap it if it is already gone (an exec failure, or it deferred to another supervisor);
    # otherwise it runs on, and becomes init's (or a subreaper's) child when we exit.
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    if not answer.startswith(b"ok"):
        raise StartError("the supervisor failed to start (see monitor.log under the run dir)")


def _check_supervisor_environment() -> None:
    """What a supervisor takes from the environment, checked before one is spawned: a typo is
    then one line naming the variable, not a supervisor dying at start-up ("failed to start")."""
    from lxctools.errors import UsageError
    from lxctools.log import parse_level
    from lxctools.paths import seconds_from_env
    for name in ("PYL_MONITOR_LINGER", "PYL_NETWORKER_LINGER"):
        seconds_from_env(name, 0.0)
    try:
        parse_level(os.environ.get("PYL_MONITOR_LOGLEVEL", "INFO"))
    except UsageError as err:
        raise UsageError(f"PYL_MONITOR_LOGLEVEL: {err.message}") from None


def _above_stdio(fd: int) -> int:
    """FD moved to a number above 2 (close-on-exec), so that the child's dup2 onto 0, 1 and 2
    cannot overwrite it: a caller that closed its stdio hands its numbers to our next opens."""
    if fd > 2:
        return fd
    import fcntl
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3)
    os.close(fd)
    return moved


def request(layout: Layout, message: dict[str, Any], *, start: bool = True) -> dict[str, Any]:
    with connect(layout, start=start) as conn:
        return conn.request(message)


def request_if_served(layout: Layout, message: dict[str, Any]) -> dict[str, Any] | None:
    """The reply of the lxcpath's running supervisor, or None when none runs or it is of an
    older pyl that lacks the request (still running across an upgrade): the caller then does
    the work itself. Other refusals raise, as request()."""
    conn = try_connect(layout)
    if conn is None:
        return None
    with conn:
        try:
            return conn.request(message)
        except PylError as err:
            if err.message.startswith("unknown request"):
                return None
            raise


def request_stop(layout: Layout, name: str, *, kill: bool, timeout: float, wait: bool = True,
                 reboot: bool = False, nokill: bool = False, supervised_only: bool = False) -> dict[str, Any]:
    """Ask the supervisor to stop ``name``; NotRunningError when it is not running.
    supervised_only: ask only a supervisor already running (NotRunningError if there is none)."""
    from lxctools.errors import NotRunningError
    conn = try_connect(layout)
    if conn is None:
        if supervised_only:
            raise NotRunningError("is not running")
        # No supervisor: a container is running only if it was orphaned; a new one adopts it.
        from lxctools.runstate import read_runstate
        if read_runstate(layout, name).record is None:
            raise NotRunningError("is not running")
        conn = connect(layout)
    with conn:
        conn.send({"op": "stop", "name": name, "kill": kill, "timeout": timeout,
                   "nowait": not wait, "reboot": reboot, "nokill": nokill})
        reply = conn.receive()
    if reply.get("ok") is False and reply.get("code") == int(NotRunningError.exit_code):
        raise NotRunningError(reply.get("error", "is not running"))
    return check(reply)
