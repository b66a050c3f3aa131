"""The netlink worker's plumbing, with stand-in operations (no netlink, no root): requests and
answers cross the process boundary, errors keep their class and exit code, a dead worker is a
clear error, stop() leaves no process behind, and a phased operation hands an fd over before it
answers. The last test makes a real network namespace (root)."""

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


def _pyroute2_loaded():
    import sys
    return "pyroute2.netlink.rtnl.ifinfmsg" in sys.modules


def _hand_over_then(outcome):
    """A PHASED stand-in: hands over an fd of a file it wrote, waits for the ack, then OUTCOME."""
    def op(sock, text):
        import tempfile
        with tempfile.TemporaryFile() as f:
            f.write(text.encode())
            f.flush()
            networker._send(sock, (True, f.fileno()))
            assert networker._recv(sock) == "ack"
            return outcome(text)
    return op


def _crash(_text):
    os._exit(3)


def _refuse(_text):
    raise KernelError("adding veth: file exists", 17)


@pytest.fixture
def worker(monkeypatch):
    monkeypatch.setitem(networker.PHASED, "handover", _hand_over_then(lambda text: text.upper()))
    monkeypatch.setitem(networker.PHASED, "handover-fail", _hand_over_then(_refuse))
    monkeypatch.setitem(networker.PHASED, "handover-crash", _hand_over_then(_crash))
    monkeypatch.setitem(networker.OPERATIONS, "echo", _echo)
    monkeypatch.setitem(networker.OPERATIONS, "kernel", _fail_kernel)
    monkeypatch.setitem(networker.OPERATIONS, "other", _fail_other)
    monkeypatch.setitem(networker.OPERATIONS, "die", _die)
    monkeypatch.setitem(networker.OPERATIONS, "loaded", _pyroute2_loaded)
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


def test_a_phased_operation_hands_over_an_fd_then_answers(worker):
    fd = worker.begin("handover", "from the worker")
    try:
        assert os.pread(fd, 100, 0) == b"from the worker"  # our own fd of the worker's file
    finally:
        os.close(fd)
    assert worker.end("handover") == "FROM THE WORKER"
    assert worker.call("echo", 1)["args"] == (1,)  # in step again for the next request


def test_a_phased_operation_failing_after_the_handover(worker):
    os.close(worker.begin("handover-fail", "x"))
    with pytest.raises(KernelError, match="file exists"):
        worker.end("handover-fail")
    assert worker.call("echo", 2)["args"] == (2,)
    os.close(worker.begin("handover-crash", "x"))
    with pytest.raises(PylError, match="worker died during 'handover-crash'"):
        worker.end("handover-crash")
    assert worker.call("echo", 3)["args"] == (3,)  # a new worker


@pytest.mark.skipif(os.geteuid() != 0, reason="making a network namespace needs root")
def test_the_worker_makes_a_network_namespace_and_sets_it_up(worker):
    # Before the container's processes exist (start forks them meanwhile): no plans here, so
    # only lo is brought up inside; the handed-over fd is a namespace that is not ours.
    fd = worker.begin("setup_new_netns", (), None)
    try:
        assert os.readlink(f"/proc/self/fd/{fd}").startswith("net:[")
        assert os.readlink(f"/proc/self/fd/{fd}") != os.readlink("/proc/self/ns/net")
        state = worker.end("setup_new_netns")
        assert state.pid == 0 and state.veth_hosts == [] and state.leases == []
        from lxctools.runtime import net
        links, lo_flags = net.within_netns(net.NetnsFd(fd), _links_and_lo_flags)
        assert links == [(1, "lo")] and lo_flags & 1  # IFF_UP
    finally:
        os.close(fd)


def _links_and_lo_flags():
    import fcntl
    import socket
    import struct
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # made here: it belongs to this netns
    try:
        answer = fcntl.ioctl(s, 0x8913, struct.pack("16sH", b"lo", 0))  # SIOCGIFFLAGS
    finally:
        s.close()
    return socket.if_nameindex(), struct.unpack("16sH", answer[:18])[1]


def test_warm_up_loads_pyroute2_before_the_first_request(worker, monkeypatch):
    pytest.importorskip("pyroute2")
    import sys
    for name in [n for n in sys.modules if n == "pyroute2" or n.startswith("pyroute2.")]:
        monkeypatch.delitem(sys.modules, name)  # the worker is a fork: it must load its own
    assert worker.call("loaded") is False  # a worker forked on demand loads it for its first netlink op
    worker.stop()
    worker.warm_up()
    pid = worker.pid
    worker.warm_up()  # already there: not a second one
    assert worker.pid == pid
    assert worker.call("loaded") is True and worker.call("echo")["pid"] == pid
