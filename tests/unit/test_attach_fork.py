"""How pyl-attach forks the process that execs in the container (runtime/attach._fork_into)."""

from __future__ import annotations

import os

from lxctools.errors import KernelError
from lxctools.runtime import attach, cgroups
from lxctools.runtime.attach import AttachSpec


def _spec() -> AttachSpec:
    return AttachSpec(pid=1, values={}, command=["true"], cgroup_plan=object())


def test_without_a_cgroup2_directory_it_is_a_plain_fork(monkeypatch):
    calls = []
    monkeypatch.setattr(os, "fork", lambda: calls.append("fork") or 4242)
    monkeypatch.setattr(attach.ns, "fork_into_cgroup", lambda fd: calls.append("clone3") or 1)
    assert attach._fork_into(_spec(), None) == 4242
    assert calls == ["fork"]


def test_born_in_the_cgroup_and_the_directory_fd_closed(monkeypatch):
    fd = os.open("/", os.O_RDONLY | os.O_DIRECTORY)
    seen = []
    monkeypatch.setattr(attach.ns, "fork_into_cgroup", lambda cgroup_fd: seen.append(cgroup_fd) or 77)
    monkeypatch.setattr(os, "fork", lambda: (_ for _ in ()).throw(AssertionError("no plain fork")))
    assert attach._fork_into(_spec(), fd) == 77
    assert seen == [fd]
    try:
        os.fstat(fd)
        raise AssertionError("the cgroup directory fd was left open")
    except OSError:
        pass


def test_a_kernel_without_clone3_into_a_cgroup_falls_back_to_moving_first(monkeypatch):
    # Before Linux 5.7 clone3 (or CLONE_INTO_CGROUP) is refused: the child moves itself into the
    # cgroup2 directory (cgroup.procs), then forks; the grandchild inherits the cgroup.
    fd = os.open("/", os.O_RDONLY | os.O_DIRECTORY)
    calls = []

    def refuse(_fd):
        raise KernelError("clone3: Function not implemented", 38)

    monkeypatch.setattr(attach.ns, "fork_into_cgroup", refuse)
    monkeypatch.setattr(cgroups, "attach_v2", lambda plan, pid: calls.append(("attach_v2", pid)))
    monkeypatch.setattr(os, "fork", lambda: calls.append("fork") or 99)
    assert attach._fork_into(_spec(), fd) == 99
    assert calls == [("attach_v2", os.getpid()), "fork"]
