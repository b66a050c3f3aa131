"""The caller's side of pyl-attach: ask the supervisor to attach, relay signals and the pty,
and return the command's exit status."""

from __future__ import annotations

import os
import signal

from lxctools.errors import PylError, StartError

FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)


def attach(layout, request: dict, *, pty: bool, pty_log: str | None) -> int:
    from lxctools.monitor.client import check, connect
    conn = connect(layout)
    request = dict(request, op="attach", pty=pty, caller_env=dict(os.environ))
    conn.send(request, fds=None if pty else [0, 1, 2])
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
                    status = _proxy_pty(fds[0], conn, pty_log)
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


def _proxy_pty(master: int, conn, pty_log: str | None) -> int | None:
    """Terminal <-> pty until the command's side closes; returns the exit status if it came."""
    import fcntl
    import select
    import termios
    import tty
    from lxctools.monitor.client import check
    stdin, stdout = 0, 1
    is_tty = os.isatty(stdin)
    saved = termios.tcgetattr(stdin) if is_tty else None
    log_fd = os.open(pty_log, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600) if pty_log else None
    status: int | None = None

    def resize(*_: object) -> None:
        if is_tty:
            fcntl.ioctl(master, termios.TIOCSWINSZ, fcntl.ioctl(stdin, termios.TIOCGWINSZ, b"\0" * 8))

    old_winch = signal.signal(signal.SIGWINCH, resize)
    try:
        if is_tty:
            tty.setraw(stdin)
            resize()
        stdin_open = True
        sock = conn.sock.fileno()
        while True:
            watch = [master, sock] + ([stdin] if stdin_open else [])
            try:
                ready, _, _ = select.select(watch, [], [])
            except InterruptedError:
                continue
            if master in ready:
                try:
                    data = os.read(master, 65536)
                except OSError:
                    data = b""
                if not data:
                    break
                os.write(stdout, data)
                if log_fd is not None:
                    os.write(log_fd, data)
            if sock in ready:
                if not conn.reader.fill():
                    raise PylError("lost the supervisor while the command ran")
                while (event := conn.reader.next_message()) is not None:
                    event = check(event)
                    if event.get("event") == "exit":
                        status = int(event["status"])
                    elif event.get("event") == "error":
                        os.write(2, f"pyl-attach: {event['error']}\n".encode())
            if stdin_open and stdin in ready:
                data = os.read(stdin, 4096)
                if not data:
                    stdin_open = False
                    os.write(master, b"\x04")  # EOF through the line discipline
                    continue
                os.write(master, data)
                if log_fd is not None:
                    os.write(log_fd, data)
    finally:
        if saved is not None:
            termios.tcsetattr(stdin, termios.TCSADRAIN, saved)
        signal.signal(signal.SIGWINCH, old_winch)
        os.close(master)
        if log_fd is not None:
            os.close(log_fd)
    return status
