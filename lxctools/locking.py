"""Per-container operation locks: flock on a close-on-exec fd, held for one operation.

Lock files live under the run dir (not in the container folder) so destroy can remove the
folder while it still holds the lock. flock dies with its holder, so a SIGKILLed command
never leaves a stale lock behind (no PID files to trust).
"""

from __future__ import annotations

import fcntl
import os
import time
from contextlib import contextmanager

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Iterator

from lxctools.errors import BusyError


def _open_lock(path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)


def try_flock(path: Path, *, shared: bool = False) -> int | None:
    """Take the lock without waiting; return the fd, or None if someone else holds it."""
    fd = _open_lock(path)
    try:
        fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def is_locked(path: Path) -> bool:
    """True if some process holds an exclusive lock on path (a probe; takes nothing)."""
    if not path.exists():
        return False
    fd = try_flock(path, shared=True)
    if fd is None:
        return True
    os.close(fd)
    return False


@contextmanager
def container_lock(path: Path, name: str, operation: str, *, wait: float = 0.0) -> Iterator[int]:
    """Hold the container's operation lock for one operation, or raise BusyError.

    wait > 0 retries for that many seconds (pyl-stop waits a little for a racing start);
    cron jobs racing on one container get one success and one clear refusal.
    """
    deadline = time.monotonic() + wait
    while True:
        fd = try_flock(path)
        if fd is not None:
            break
        if time.monotonic() >= deadline:
            raise BusyError(f"{name}: cannot {operation}: another pyl command is working on this container",
                            hint="try again when it is done")
        time.sleep(0.02)
    try:
        yield fd
    finally:
        os.close(fd)
