"""The operation and running locks: a lock file lives only as long as what it guards, and
removing it never lets two holders in at once (a taker that locked a removed file retries)."""

from __future__ import annotations

import os

import pytest

from lxctools import locking
from lxctools.container import Container
from lxctools.errors import BusyError
from lxctools.locking import container_lock, is_locked, release, try_flock
from lxctools.paths import PARTIAL_MARKER, Layout


def test_a_lock_taken_on_a_file_its_holder_removed_is_not_held(tmp_path, monkeypatch):
    # B opened the lock file, then A (the holder) removed it and left, and C locked the new
    # file. B's flock on the old file succeeds, but guards nothing: B must see C's lock.
    path = str(tmp_path / "lock" / "c1")
    a = try_flock(path)
    stale = os.open(path, os.O_RDWR)
    release(a, path, remove=True)
    c = try_flock(path)
    assert c is not None
    opened = []
    real_open = locking._open_lock

    def open_stale_first(p, create):
        opened.append(p)
        return os.dup(stale) if len(opened) == 1 else real_open(p, create)

    monkeypatch.setattr(locking, "_open_lock", open_stale_first)
    assert try_flock(path) is None  # not the stale fd: C holds the lock at the path
    assert len(opened) == 2
    release(c, path, remove=True)
    os.close(stale)


def test_racing_holders_that_remove_the_file_each_time_never_overlap(tmp_path):
    # Each worker takes the lock, does a read-modify-write of a counter, and leaves with the
    # guarded folder absent, so every release removes the file others are waiting on. A lost
    # update means two held the lock at once.
    lock_path = str(tmp_path / "run" / "lock" / "c1")
    counter = tmp_path / "counter"
    counter.write_text("0")
    folder = str(tmp_path / "no-such-container")
    workers, rounds = 3, 120
    pids = []
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - child
            code = 0
            try:
                for _ in range(rounds):
                    with container_lock(lock_path, "c1", "count", wait=30, folder=folder):
                        value = int(counter.read_text())
                        os.sched_yield()
                        counter.write_text(str(value + 1))
            except BaseException:
                code = 1
            os._exit(code)
        pids.append(pid)
    codes = [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in pids]
    assert codes == [0] * workers
    assert int(counter.read_text()) == workers * rounds
    assert not os.path.exists(lock_path)


def test_container_lock_keeps_the_file_of_an_existing_container(tmp_path):
    folder = tmp_path / "lxc" / "c1"
    folder.mkdir(parents=True)
    path = str(tmp_path / "run" / "lock" / "c1")
    with container_lock(path, "c1", "start", folder=str(folder)):
        assert is_locked(path)
        with pytest.raises(BusyError, match="c1: cannot start: another pyl command"):
            with container_lock(path, "c1", "start", folder=str(folder)):
                pass
    assert os.path.exists(path) and not is_locked(path)
    folder.rmdir()  # destroyed under the next holder: the file goes with that lock
    with container_lock(path, "c1", "destroy", folder=str(folder)):
        pass
    assert not os.path.exists(path)


def test_is_locked_probes_without_making_a_file(tmp_path):
    path = str(tmp_path / "state" / "c1.running")
    assert not is_locked(path)
    assert not os.path.exists(os.path.dirname(path))
    fd = try_flock(path)
    assert is_locked(path)
    release(fd, path, remove=True)
    assert not is_locked(path) and not os.path.exists(path)


def test_try_flock_without_create_makes_nothing(tmp_path):
    path = str(tmp_path / "marker")
    assert try_flock(path, create=False) is None
    assert not os.path.exists(path)


def test_reaping_a_creation_that_finished_meanwhile_leaves_the_container_whole(tmp_path):
    # is_partial() saw the marker, then the creation finished (marker gone, lock released)
    # before reap_partial ran: it must not take the complete container for a half-made one.
    layout = Layout(tmp_path / "lxc", tmp_path / "run")
    folder = tmp_path / "lxc" / "c1"
    (folder / "rootfs").mkdir(parents=True)
    (folder / "config.toml").write_text('[lxc]\n"uts.name" = "c1"\n')
    Container("c1", layout).reap_partial()
    assert sorted(os.listdir(folder)) == ["config.toml", "rootfs"]
    assert not os.path.exists(folder / PARTIAL_MARKER)
    assert os.path.exists(layout.lock_path("c1"))  # the container exists: its lock file stays


def test_reaping_a_half_made_container_removes_it_and_its_lock_file(tmp_path):
    layout = Layout(tmp_path / "lxc", tmp_path / "run")
    folder = tmp_path / "lxc" / "c1"
    (folder / "rootfs").mkdir(parents=True)
    (folder / PARTIAL_MARKER).write_text("")  # its pyl-create died: the marker is not locked
    Container("c1", layout).reap_partial()
    assert not folder.exists()
    assert not os.path.exists(layout.lock_path("c1"))
