"""The caller's side of an attach: wait for the command, proxy a pty, forward signals."""

from __future__ import annotations

import os
import signal
import socket

from lxctools.errors import PylError, StartError
from lxctools.runtime.attach import AttachSpec, spawn_attached

FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)


def run_attached(spec: AttachSpec, pty_log: str | None = None) -> int:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    child = spawn_attached(spec, theirs)
    theirs.close()
    master = None
    target: int | None = None
    buffer = b""
    while target is None or (spec.pty and master is None):
        data, anc, _flags, _addr = ours.recvmsg(4096, socket.CMSG_SPACE(4))
        for level, kind, payload in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                import array
                master = array.array("i", payload[:4])[0]
        if not data:
            break
        buffer += data
        while b"\n" in buffer:
            line, _, buffer = buffer.partition(b"\n")
            text = line.decode(errors="replace")
            if text.startswith("pid "):
                target = int(text.split()[1])
            elif text.startswith("error "):
                os.waitpid(child, 0)
                raise StartError(text[6:], exit_code=1)
    if target is None:
        os.waitpid(child, 0)
        raise PylError("attach failed before the command started")

    def forward(signum: int, _frame: object) -> None:
        try:
            os.kill(target, signum)
        except ProcessLookupError:
            pass

    previous = {sig: signal.signal(sig, forward) for sig in FORWARDED}
    try:
        if master is not None:
            _proxy_pty(master, ours, pty_log)
        else:
            _drain_errors(ours, buffer)
        ours.close()
        while True:
            try:
                _, status = os.waitpid(child, 0)
                break
            except InterruptedError:
                continue
        code = os.waitstatus_to_exitcode(status)
        return 128 - code if code < 0 else code
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _drain_errors(control: socket.socket, buffer: bytes) -> None:
    """Until the command execs (its copy of the socket closes on exec), setup errors may come."""
    while True:
        try:
            data = control.recv(4096)
        except InterruptedError:
            continue
        if not data:
            break
        buffer += data
    for line in buffer.decode(errors="replace").splitlines():
        if line.startswith("error "):
            os.write(2, f"pyl-attach: {line[6:]}\n".encode())


def _proxy_pty(master: int, control: socket.socket, pty_log: str | None) -> None:
    import fcntl
    import select
    import termios
    import tty
    stdin, stdout = 0, 1
    is_tty = os.isatty(stdin)
    saved = termios.tcgetattr(stdin) if is_tty else None
    log_fd = os.open(pty_log, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600) if pty_log else None

    def resize(*_: object) -> None:
        if is_tty:
            fcntl.ioctl(master, termios.TIOCSWINSZ, fcntl.ioctl(stdin, termios.TIOCGWINSZ, b"\0" * 8))

    old_winch = signal.signal(signal.SIGWINCH, resize)
    try:
        if is_tty:
            tty.setraw(stdin)
            resize()
        stdin_open = True
        control_closed = False
        while True:
            watch = [master] + ([] if control_closed else [control.fileno()]) + ([stdin] if stdin_open else [])
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
            if control.fileno() in ready:
                note = control.recv(4096)
                if note.startswith(b"error "):
                    os.write(2, b"pyl-attach: " + note[6:])
                if not note:
                    control_closed = True
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
