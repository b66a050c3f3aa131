"""Per-container operation locks: flock on a close-on-exec fd, held for one operation.

Lock files live under the run dir (not in the container folder) so destroy can remove the
folder while it still holds the lock. flock dies with its holder, so a SIGKILLed command
never leaves a stale lock behind (no PID files to trust).

A lock file lives as long as what it guards: the last holder of a container's lock removes
the file once the container is gone (destroy, a failed create), and the supervisor removes a
container's running lock when it stops. Removing a file others may be waiting on is safe
because every taker checks, once it holds the flock, that its fd is still the file at the
path; a lock taken on a removed file guards nothing, so the taker opens the path again.
"""

from __future__ import annotations

import fcntl
import os
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path

    from lxctools.paths import Layout

from lxctools.errors import BusyError, PylError

_OPEN_FLAGS = os.O_RDWR | os.O_CLOEXEC


def _open_lock(path: str | Path, create: bool) -> int | None:
    try:
        if not create:
            try:
                return os.open(path, _OPEN_FLAGS)
            except FileNotFoundError:
                return None
        try:
            return os.open(path, _OPEN_FLAGS | os.O_CREAT, 0o600)
        except FileNotFoundError:  # first lock under this run dir
            os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
            return os.open(path, _OPEN_FLAGS | os.O_CREAT, 0o600)
    except (IsADirectoryError, NotADirectoryError) as err:
        # A folder made by hand where the lock file belongs (or a file where the lock folder
        # does): no pyl command can hold it, so a probe finds it free; a taker cannot lock it.
        if not create:
            return None
        raise PylError(f"cannot lock {path}: {err.strerror}",
                       hint="remove what is in the way there; pyl makes its lock files itself") from None


def _still_at(fd: int, path: str | Path) -> bool:
    """True if FD is the file PATH names now (its holder did not remove or replace it)."""
    held = os.fstat(fd)
    try:
        current = os.stat(path)
    except FileNotFoundError:
        return False
    return held.st_ino == current.st_ino and held.st_dev == current.st_dev


def try_flock(path: str | Path, *, shared: bool = False, create: bool = True) -> int | None:
    """Take the lock without waiting; return the fd, or None if someone else holds it (or,
    without CREATE, if there is no such file: nothing to lock)."""
    while True:
        fd = _open_lock(path, create)
        if fd is None:
            return None
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        if _still_at(fd, path):
            return fd
        os.close(fd)  # the holder before us removed the file: lock the one at the path now


def is_locked(path: str | Path) -> bool:
    """True if some process holds an exclusive lock on path (a probe; takes and makes nothing)."""
    fd = _open_lock(path, create=False)
    if fd is None:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    # Free, or a removed file (its holder finished and took it away): either way not held.
    return False


def release(fd: int, path: str | Path, *, remove: bool = False) -> None:
    """Give up the lock FD on PATH, first removing PATH with REMOVE (what it guards is gone:
    a run dir must not collect a file per name ever used)."""
    if remove:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
    os.close(fd)


def release_guarding(fd: int, path: str | Path, folder: str) -> None:
    """Give up a container's lock FD on PATH, removing PATH if FOLDER, the container folder it
    guards, is gone (destroyed, never made, reaped as half-made)."""
    release(fd, path, remove=not os.path.lexists(folder))


def prune_locks(layout: Layout) -> None:
    """Remove the lock files of LAYOUT's names that have no folder in its lxcpath, then its lock
    folder and run folder if that left them empty: for an lxcpath that went away (a
    container's snapshots folder, destroyed or moved by a rename). A lock someone holds stays
    (its holder removes the file when it is done)."""
    lock_dir = layout.run_path("lock")
    try:
        names = os.listdir(lock_dir)
    except FileNotFoundError:
        return
    for name in names:
        path = os.path.join(lock_dir, name)
        fd = try_flock(path, create=False)
        if fd is not None:
            release_guarding(fd, path, layout.container_path(name))
    for folder in (lock_dir, layout.run_path()):
        try:
            os.rmdir(folder)
        except OSError:  # still in use (a held lock, a supervisor's files): left as it is
            return


class container_lock:
    """Hold the container's operation lock for one operation, or raise BusyError.

    wait > 0 retries for that many seconds (pyl-stop waits a little for a racing start);
    cron jobs racing on one container get one success and one clear refusal. FOLDER is the
    container's folder: the lock file goes with the lock when the folder is gone. A class
    rather than a @contextmanager: contextlib is ~1 ms of start-up for one decorator.
    """

    def __init__(self, path: str | Path, name: str, operation: str, *, wait: float = 0.0,
                 folder: str | None = None) -> None:
        self.path, self.name, self.operation, self.wait = path, name, operation, wait
        self.folder = folder
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
        if self.folder is None:
            release(self.fd, self.path)
        else:
            release_guarding(self.fd, self.path, self.folder)
        self.fd = -1
