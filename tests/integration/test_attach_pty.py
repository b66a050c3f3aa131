"""pyl-attach on a terminal: a pty inside the container's own devpts, proxied; login shell,
Ctrl-C, window size, -L log, and the caller's terminal never reachable from inside."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import termios
import time


from tests.conftest import requires_busybox, requires_root

pytestmark = [requires_root, requires_busybox]



def spawn(pyl, *args: str, rows: int = 33, cols: int = 101):
    argv = pyl.argv("attach", "-n", "c1", *args)
    pid, fd = pty.fork()
    if pid == 0:
        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        os.execve(argv[0], argv, pyl.env)
    return pid, fd


def read_until(fd: int, needle: bytes, timeout: float = 15) -> bytes:
    data = b""
    deadline = time.monotonic() + timeout
    while needle not in data and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            data += chunk
    return data


def finish(pid: int, fd: int) -> int:
    read_until(fd, b"\0", timeout=2)  # drain
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status)


def test_login_shell_with_a_pty_inside(running):
    pid, fd = spawn(running)
    prompt = read_until(fd, b"# ")
    if b"\x1b[6n" in prompt + read_until(fd, b"\x1b[6n", timeout=1):
        os.write(fd, b"\x1b[1;1R")  # answer ash's cursor-position query, as a terminal would
    os.write(fd, b"echo $((6*7)); readlink /proc/self/fd/0; stty size; tty\r")
    out = read_until(fd, b"/dev/pts/")
    out += read_until(fd, b"101", timeout=5)
    assert b"42" in out
    assert b"33 101" in out                     # our window size reached the inside pty
    assert b"/dev/pts/" in out                  # the container's own devpts, not ours
    os.write(fd, b"exit 7\r")
    assert finish(pid, fd) == 7


def test_ctrl_c_reaches_the_command(running):
    pid, fd = spawn(running, "--", "sh", "-c", "echo started; sleep 30")
    assert b"started" in read_until(fd, b"started")
    os.write(fd, b"\x03")
    assert finish(pid, fd) == 130


def test_pty_log(running, tmp_path):
    log = tmp_path / "pty.log"
    pid, fd = spawn(running, "-L", str(log), "--", "echo", "logged-line")
    read_until(fd, b"logged-line")
    assert finish(pid, fd) == 0
    assert b"logged-line" in log.read_bytes()


def test_no_pty_when_forced_off(running):
    pid, fd = spawn(running, "--no-pty", "--", "sh", "-c", "test -t 0 && echo tty || echo notty")
    out = read_until(fd, b"tty")
    assert finish(pid, fd) == 0
    # --no-pty passes our fds through: the command sees *our* terminal as stdin
    assert b"tty" in out
