"""How a start's PID 1 and an attached process are forked into the container's cgroup2
directory (runtime.cgroups.fork_in_v2)."""

from __future__ import annotations

import os

from lxctools.errors import KernelError
from lxctools.kernel import ns
from lxctools.runtime.cgroups import apply

PLAN = object()  # stands for the container's CgroupPlan: only passed through here


def test_without_a_cgroup2_directory_it_is_a_plain_fork(monkeypatch):
    calls = []
    monkeypatch.setattr(os, "fork", lambda: calls.append("fork") or 4242)
    monkeypatch.setattr(ns, "fork_into_cgroup", lambda fd: calls.append("clone3") or 1)
    assert apply.fork_in_v2(PLAN, None) == 4242
    assert calls == ["fork"]


def test_born_in_the_cgroup_and_the_directory_fd_closed(monkeypatch):
    fd = os.open("/", os.O_RDONLY | os.O_DIRECTORY)
    seen = []
    monkeypatch.setattr(ns, "fork_into_cgroup", lambda cgroup_fd: seen.append(cgroup_fd) or 77)
    monkeypatch.setattr(os, "fork", lambda: (_ for _ in ()).throw(AssertionError("no plain fork")))
    assert apply.fork_in_v2(PLAN, fd) == 77
    assert seen == [fd]
    try:
        os.fstat(fd)
        raise AssertionError("the cgroup directory fd was left open")
    except OSError:
        pass


def test_a_kernel_without_clone3_into_a_cgroup_falls_back_to_moving_first(monkeypatch):
    # Before Linux 5.7 clone3 (or CLONE_INTO_CGROUP) is refused: this process moves itself into
    # the cgroup2 directory (cgroup.procs), then forks; the child inherits the cgroup.
    fd = os.open("/", os.O_RDONLY | os.O_DIRECTORY)
    calls = []

    def refuse(_fd):
        raise KernelError("clone3: Function not implemented", 38)

    monkeypatch.setattr(ns, "fork_into_cgroup", refuse)
    monkeypatch.setattr(apply, "attach_v2", lambda plan, pid: calls.append(("attach_v2", pid)))
    monkeypatch.setattr(os, "fork", lambda: calls.append("fork") or 99)
    assert apply.fork_in_v2(PLAN, fd) == 99
    assert calls == [("attach_v2", os.getpid()), "fork"]


# --- a start's PID 1: one clone3 from the supervisor (runtime.start._clone_init) --------------

class _Plan:
    class unified:  # noqa: N801 - stands for the plan's CgroupDir
        path = "/sys/fs/cgroup/unified/pyl.payload.c1"


def _handled() -> set:
    import signal
    return {signal.SIGTERM, signal.SIGINT, signal.SIGCHLD, signal.SIGHUP, signal.SIGUSR1}


_HANDLED = _handled()  # what the supervisor has handlers for, and more


def _blocked() -> set:
    import signal
    return signal.pthread_sigmask(signal.SIG_BLOCK, ())


def _fake_clone(monkeypatch, *results):
    """ns.clone3 answering RESULTS in turn (a pid, or a KernelError to raise); records how it
    was called and what this thread blocked at the time."""
    from lxctools.runtime import cgroups
    fd = os.open("/", os.O_RDONLY | os.O_DIRECTORY)
    monkeypatch.setattr(cgroups, "open_v2_dir", lambda plan: fd)
    calls = []
    answers = list(results)

    def clone3(flags=0, *, cgroup_fd=None):
        calls.append((flags, cgroup_fd, _blocked()))
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setattr(ns, "clone3", clone3)
    return fd, calls


def _closed(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return True
    return False


def test_init_is_born_in_its_namespaces_and_cgroup2_directory(monkeypatch):
    from lxctools.runtime.start import _clone_init
    fd, calls = _fake_clone(monkeypatch, 4242)
    flags = ns.CLONE_NEWPID | ns.CLONE_NEWNS
    before = _blocked()
    assert _clone_init(_Plan, flags) == (4242, False)
    ((got_flags, got_fd, blocked_then),) = calls
    assert got_flags == flags and got_fd == fd
    # every signal held back while the clone has the supervisor's handlers
    assert _HANDLED <= blocked_then and len(blocked_then) >= 60
    assert _blocked() == before  # ... and the supervisor's mask back afterwards
    assert _closed(fd)


def test_a_cgroup_it_cannot_be_born_in_is_joined_by_init_itself(monkeypatch):
    from lxctools.runtime.start import _clone_init
    fd, calls = _fake_clone(monkeypatch, KernelError("clone3: Device or resource busy", 16), 77)
    assert _clone_init(_Plan, ns.CLONE_NEWPID) == (77, True)
    assert [(f, c) for f, c, _ in calls] == [(ns.CLONE_NEWPID, fd), (ns.CLONE_NEWPID, None)]
    assert _closed(fd)


def test_in_init_the_signals_stay_blocked_until_its_handlers_are_reset(monkeypatch):
    import signal
    from lxctools.runtime.start import _clone_init
    _fake_clone(monkeypatch, 0)  # 0: as clone3 returns in the child
    try:
        assert _clone_init(_Plan, ns.CLONE_NEWPID) == (0, False)
        assert _HANDLED <= _blocked()  # _born unblocks, after leave_supervisor
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, ())


def test_a_refused_clone_leaves_the_mask_and_no_fd_behind(monkeypatch):
    from lxctools.runtime.start import _clone_init
    before = _blocked()
    fd, _ = _fake_clone(monkeypatch, KernelError("clone3: Invalid argument", 22),
                        KernelError("clone3: Invalid argument", 22))
    try:
        _clone_init(_Plan, 0)
        raise AssertionError("no error")
    except KernelError:
        pass
    assert _blocked() == before and _closed(fd)
