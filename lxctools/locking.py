"""Per-container operation locks: flock on a close-on-exec fd, held for one operation.

Lock files live under the run dir (not in the container folder) so destroy can remove the
folder while it still holds the lock. flock dies with its holder, so a SIGKILLed command
never leaves a stale lock behind (no PID files to trust).
"""

from __future__ import annotations

import fcntl
import os
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path

from lxctools.errors import BusyError


def _open_lock(path: str | Path) -> int:
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except FileNotFoundError:  # first lock under this run dir
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)


def try_flock(path: str | Path, *, shared: bool = False) -> int | None:
    """Take the lock without waiting; return the fd, or None if someone else holds it."""
    fd = _open_lock(path)
    try:
        fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def is_locked(path: str | Path) -> bool:
    """True if some process holds an exclusive lock on path (a probe; takes nothing)."""
    if not os.path.exists(path):
        return False
    fd = try_flock(path, shared=True)
    if fd is None:
        return True
    os.close(fd)
    return False


class container_lock:
    """Hold the container's operation lock for one operation, or raise BusyError.

    wait > 0 retries for that many seconds (pyl-stop waits a little for a racing start);
    cron jobs racing on one container get one success and one clear refusal. A class rather
    than a @contextmanager: contextlib is ~1 ms of start-up for one decorator.
    """

    def __init__(self, path: str | Path, name: str, operation: str, *, wait: float = 0.0) -> None:
        self.path, self.name, self.operation, self.wait = path, name, operation, wait
        self.fd = -1

    def __enter__(self) -> int:
        deadline = time.monotonic() + self.wait
        while True:
            fd = try_flock(self.path)
            if fd is not None:
                self.fd = fd
                return fd
            if time.monotonic() >= deadline:
                raise BusyError(f"{self.name}: cannot {self.operation}: another pyl command is working on "
                                "this container", hint="try again when it is done")
            time.sleep(0.02)

    def __exit__(self, *_: object) -> None:
        os.close(self.fd)
        self.fd = -1
