"""This process's terminal joined to a pty master: raw mode, window size, the copy loop.

Used by pyl-console (the console/tty masters the supervisor holds) and pyl-attach (a pty made
inside the container). Both stop when the container's side closes; each adds its own input
handling (console: the Ctrl-a escape) and control channel (the supervisor's socket).
"""

from __future__ import annotations

import os
import select
import signal

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable

STDIN, STDOUT = 0, 1


def proxy(master: int, *, control: int | None = None, on_control: Callable[[], bool] | None = None,
          filter_input: Callable[[bytes], bytes | None] | None = None, log_fd: int | None = None,
          eof_to_master: bytes | None = None, detach_at_eof: bool = False,
          on_resize: Callable[[], None] | None = None) -> None:
    """Copy stdin -> master and master -> stdout until the master side closes, on_control()
    (called when `control` is readable) returns False, or filter_input returns None (detach).
    At the end of stdin: EOF_TO_MASTER is written to the master (attach: the pty's EOF key),
    and with DETACH_AT_EOF the copy stops once the output already there is shown (console, as
    lxc-console quits at the end of its input); otherwise output goes on being copied.
    The terminal is raw meanwhile and its size follows ours (SIGWINCH; ON_RESIZE is called
    after each change, for a master that is a proxy), then both are restored."""
    import fcntl
    import termios
    import tty
    is_tty = os.isatty(STDIN)
    saved = termios.tcgetattr(STDIN) if is_tty else None

    def resize(*_: object) -> None:
        if is_tty:
            fcntl.ioctl(master, termios.TIOCSWINSZ, fcntl.ioctl(STDIN, termios.TIOCGWINSZ, b"\0" * 8))
            if on_resize is not None:
                on_resize()

    old_winch = signal.signal(signal.SIGWINCH, resize)
    try:
        if is_tty:
            tty.setraw(STDIN)
            resize()
        stdin_open = True
        while True:
            watch = [master] + ([control] if control is not None else []) + ([STDIN] if stdin_open else [])
            try:
                ready, _, _ = select.select(watch, [], [])
            except InterruptedError:
                continue
            if master in ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: every slave fd is closed
                    data = b""
                if not data:
                    return
                _show(data, log_fd)
            if control is not None and control in ready and on_control is not None:
                if not on_control():
                    return
            if stdin_open and STDIN in ready:
                data = os.read(STDIN, 4096)
                if not data:
                    stdin_open = False
                    if eof_to_master:
                        os.write(master, eof_to_master)
                    if detach_at_eof:
                        _copy_pending(master, log_fd)
                        return
                    continue
                if filter_input is not None:
                    filtered = filter_input(data)
                    if filtered is None:
                        return
                    data = filtered
                if data:
                    os.write(master, data)
                    if log_fd is not None:
                        os.write(log_fd, data)
    finally:
        if saved is not None:
            termios.tcsetattr(STDIN, termios.TCSADRAIN, saved)
        signal.signal(signal.SIGWINCH, old_winch)


def _copy_pending(master: int, log_fd: int | None) -> None:
    """What the master has to read right now, to stdout (and the log): no waiting for more."""
    while select.select([master], [], [], 0)[0]:
        try:
            data = os.read(master, 65536)
        except (BlockingIOError, OSError):
            return
        if not data:
            return
        _show(data, log_fd)


def _show(data: bytes, log_fd: int | None) -> None:
    """Output of the container's side: to our stdout, and to the log when there is one."""
    os.write(STDOUT, data)
    if log_fd is not None:
        os.write(log_fd, data)


class EscapeFilter:
    """lxc-console's keys: PREFIX q detaches, PREFIX PREFIX sends one PREFIX."""

    def __init__(self, prefix: int) -> None:
        self.prefix = prefix
        self.escaped = False
        self.pending = b""

    def __call__(self, data: bytes) -> bytes | None:
        out = bytearray()
        for byte in data:
            if self.escaped:
                self.escaped = False
                if byte == ord("q"):
                    self.pending = bytes(out)
                    return None
                out.append(byte)
            elif byte == self.prefix:
                self.escaped = True
            else:
                out.append(byte)
        return bytes(out)
