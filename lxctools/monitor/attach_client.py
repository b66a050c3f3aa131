"""The caller's side of pyl-attach: ask the supervisor to attach, relay signals and the pty,
and return the command's exit status."""

from __future__ import annotations

import os

# _signal, not signal: the latter builds IntEnums (imports enum, ~3 ms) we have no use for.
import _signal as signal

from lxctools.errors import PylError, StartError

FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)


def attach(layout, request: dict, *, pty: bool, pty_log: str | None) -> int:
    log_fd = None
    if pty_log and pty:
        # Opened before the command starts: a log that cannot be written is said while
        # nothing has run yet, not as a crash once the command runs inside.
        try:
            log_fd = os.open(pty_log, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as err:
            from lxctools.errors import file_error
            raise file_error(err, f"the pty log '{pty_log}'") from None
    try:
        return _attach(layout, request, pty=pty, log_fd=log_fd)
    finally:
        if log_fd is not None:
            os.close(log_fd)


def _attach(layout, request: dict, *, pty: bool, log_fd: int | None) -> int:
    from lxctools.monitor.client import caller_stdio, check, connect
    conn = connect(layout)
    request = dict(request, op="attach", pty=pty, caller_env=dict(os.environ))
    conn.send(request, fds=None if pty else caller_stdio())
    target: int | None = None
    previous: dict = {}

    def forward(signum: int, _frame: object) -> None:
        if target is not None:
            try:
                os.kill(target, signum)
            except ProcessLookupError:
                pass

    try:
        while True:
            event = check(conn.receive())
            kind = event.get("event")
            if kind == "started":
                target = event["pid"]
                if not previous:
                    previous = {sig: signal.signal(sig, forward) for sig in FORWARDED}
            elif kind == "pty":
                fds = conn.reader.take_fds()
                if fds:
                    status = _proxy_pty(fds[0], conn, log_fd)
                    if status is not None:
                        return status
            elif kind == "error":
                raise StartError(event["error"], exit_code=1)
            elif kind == "exit":
                return int(event["status"])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        conn.close()


def _proxy_pty(master: int, conn, log_fd: int | None) -> int | None:
    """Terminal <-> pty until the command's side closes; returns the exit status if it came."""
    from lxctools.monitor.client import check
    from lxctools.terminal import proxy
    status: int | None = None

    def on_control() -> bool:
        nonlocal status
        if not conn.reader.fill():
            raise PylError("lost the supervisor while the command ran")
        while (event := conn.reader.next_message()) is not None:
            event = check(event)
            if event.get("event") == "exit":
                status = int(event["status"])
            elif event.get("event") == "error":
                os.write(2, f"pyl-attach: {event['error']}\n".encode())
        return True

    try:
        # EOF on our stdin becomes ^D through the pty's line discipline
        proxy(master, control=conn.sock.fileno(), on_control=on_control, log_fd=log_fd, eof_to_master=b"\x04")
    finally:
        os.close(master)
    return status
