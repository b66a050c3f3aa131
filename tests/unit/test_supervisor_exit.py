"""An init's exit (LifecycleOps._init_exited): whatever fails on the way, the container leaves
the supervisor's books and everyone waiting for it hears the end."""

from __future__ import annotations

import errno
import json
import os
import shutil
import socket
import tempfile

import pytest

from lxctools.locking import try_flock
from lxctools.monitor import supervisor as supervisor_module
from lxctools.monitor.protocol import Reader
from lxctools.monitor.records import Client, Supervised
from lxctools.monitor.supervisor import Supervisor
from lxctools.paths import Layout
from lxctools.state import State


@pytest.fixture
def sup(tmp_path):
    rundir = tempfile.mkdtemp(prefix="pylu-", dir="/tmp")  # short: the socket must fit sun_path
    supervisor = Supervisor(Layout(lxcpath=tmp_path, rundir=rundir), linger=0)
    yield supervisor
    supervisor.sel.close()
    shutil.rmtree(rundir)


def _client() -> tuple[Client, socket.socket]:
    ours, theirs = socket.socketpair()
    return Client(sock=ours, reader=Reader(ours)), theirs


def _received(peer: socket.socket) -> list[dict]:
    peer.settimeout(1)
    return [json.loads(line) for line in peer.recv(65536).decode().splitlines()]


def _supervised(sup: Supervisor, name: str) -> Supervised:
    os.makedirs(os.path.dirname(sup.layout.running_lock_path(name)), exist_ok=True)
    lock = try_flock(sup.layout.running_lock_path(name))
    record = Supervised(name=name, pid=999999, starttime=1, state=State.RUNNING, values={},
                        config_file="/nonexistent/config.toml", cgroup_plan=None, net_plans=(),
                        net_state=None, running_lock=lock)
    sup.containers[name] = record
    sup.by_pid[record.pid] = record
    return record


def test_a_state_file_that_cannot_be_written_does_not_keep_the_container_or_its_waiters(sup, monkeypatch):
    record = _supervised(sup, "c1")
    executor, executor_end = _client()
    stopper, stopper_end = _client()
    record.exec_client = executor
    record.stop_waiters.append(stopper)

    def full(path, data) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(supervisor_module, "write_json_atomic", full)
    sup._init_exited(record, 3)
    assert "c1" not in sup.containers and record.pid not in sup.by_pid
    assert _received(executor_end) == [{"event": "exit", "status": 3}]
    assert _received(stopper_end) == [{"ok": True, "state": "STOPPED"}]
    assert not os.path.exists(sup.layout.running_lock_path("c1"))  # the running lock went too
    for end in (executor.sock, executor_end, stopper.sock, stopper_end):
        end.close()
