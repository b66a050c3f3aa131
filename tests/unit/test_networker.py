"""The netlink worker's plumbing, with stand-in operations (no netlink, no root): requests and
answers cross the process boundary, errors keep their class and exit code, a dead worker is a
clear error, and stop() leaves no process behind."""

from __future__ import annotations

import os

import pytest

from lxctools.errors import KernelError, PylError
from lxctools.runtime import networker


def _echo(*args):
    return {"args": args, "pid": os.getpid()}


def _fail_kernel():
    raise KernelError("deleting x: no such device", 19, hint="check it")


def _fail_other():
    raise ValueError("unexpected")


def _die():
    os._exit(3)


@pytest.fixture
def worker(monkeypatch):
    monkeypatch.setitem(networker.OPERATIONS, "echo", _echo)
    monkeypatch.setitem(networker.OPERATIONS, "kernel", _fail_kernel)
    monkeypatch.setitem(networker.OPERATIONS, "other", _fail_other)
    monkeypatch.setitem(networker.OPERATIONS, "die", _die)
    w = networker.NetWorker(linger=60)
    yield w
    w.stop()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] != "Z"


def test_answers_come_from_one_separate_process(worker):
    first = worker.call("echo", 1, "two", [3])
    second = worker.call("echo", None)
    assert first["args"] == (1, "two", [3]) and second["args"] == (None,)
    assert first["pid"] == second["pid"] == worker.pid != os.getpid()


def test_errors_keep_their_class_message_and_code(worker):
    with pytest.raises(KernelError) as info:
        worker.call("kernel")
    assert info.value.message == "deleting x: no such device" and info.value.errno == 19
    assert info.value.hint == "check it"
    with pytest.raises(PylError, match="network: ValueError: unexpected"):
        worker.call("other")
    assert worker.call("echo", 5)["args"] == (5,)  # still serving after errors


def test_a_dead_worker_is_a_clear_error_and_the_next_call_gets_a_new_one(worker):
    first = worker.call("echo")["pid"]
    with pytest.raises(PylError, match="worker died during 'die'"):
        worker.call("die")
    assert not _alive(first)
    assert worker.call("echo")["pid"] not in (first, os.getpid())


def test_stop_ends_the_process_and_idle_deadline_follows_use(worker):
    assert worker.idle_deadline() is None
    pid = worker.call("echo")["pid"]
    deadline = worker.idle_deadline()
    assert deadline is not None and deadline >= worker.last_used + 59
    worker.linger = 0
    worker.stop_if_idle()
    assert worker.pid is None and worker.idle_deadline() is None and not _alive(pid)


def test_unknown_operation_is_an_error_not_a_hang(worker):
    with pytest.raises(PylError, match="KeyError"):
        worker.call("no-such-op")


def test_a_worker_gone_before_a_request_is_replaced_without_losing_it(worker):
    first = worker.call("echo")["pid"]
    os.kill(first, 9)
    os.waitpid(first, 0)  # as the supervisor's SIGCHLD reaper would
    answer = worker.call("echo", "again")
    assert answer["args"] == ("again",) and answer["pid"] != first
