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
