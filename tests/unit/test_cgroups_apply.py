"""create/attach/destroy/limits/devices, freezer, stats and pyl-cgroup values on fake cgroup trees.

A fake tree is plain directories and files in tmp_path; writes are recorded so the order the kernel
would see them can be asserted (a real control file keeps only the last write).
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from lxctools.errors import BusyError, NotFoundError, StartError, TimeoutError_, UsageError
from lxctools.runtime import cgroups as cg
from lxctools.runtime.cgroups import apply

V1_CONTROLLERS = ("cpuset", "cpu", "cpuacct", "memory", "devices", "freezer", "blkio", "pids")


@pytest.fixture
def writes(monkeypatch):
    log: list[tuple[str, str]] = []
    real = apply.write_file

    def recording(path: str, value: str) -> None:
        log.append((path, value))
        real(path, value)

    monkeypatch.setattr(apply, "write_file", recording)
    return log


def v1_tree(tmp: Path, caller: str = "/") -> cg.CgroupLayout:
    hs = []
    for c in V1_CONTROLLERS:
        mp = tmp / "v1" / c
        (mp / caller.strip("/")).mkdir(parents=True, exist_ok=True)
        hs.append(cg.Hierarchy(1, str(mp), (c,), caller))
    (tmp / "v1/cpuset/cpuset.cpus").write_text("0-1\n")
    (tmp / "v1/cpuset/cpuset.mems").write_text("0\n")
    return cg.CgroupLayout("v1", tuple(hs))


def v2_tree(tmp: Path, caller: str = "/", controllers: str = "cpuset cpu io memory pids") -> cg.CgroupLayout:
    mp = tmp / "unified"
    d = mp / caller.strip("/")
    d.mkdir(parents=True, exist_ok=True)
    (d / "cgroup.controllers").write_text(controllers + "\n")
    (d / "cgroup.subtree_control").write_text("\n")
    return cg.CgroupLayout("v2", (cg.Hierarchy(2, str(mp), tuple(controllers.split()), caller),))


def hybrid_tree(tmp: Path) -> cg.CgroupLayout:
    v1 = v1_tree(tmp)
    v2 = v2_tree(tmp, controllers="")
    return cg.CgroupLayout("hybrid", v1.hierarchies + v2.hierarchies)


@pytest.fixture
def fake_bpf(monkeypatch):
    from lxctools.kernel import bpf

    calls = []
    monkeypatch.setattr(bpf, "attach_device_program", lambda d, default, rules: calls.append((d, default, rules)))
    return calls


def test_create_destroy_v1(tmp_path, writes):
    layout = v1_tree(tmp_path)
    plan = cg.plan_cgroup({"lxc.cgroup.memory.limit_in_bytes": "64M", "lxc.cgroup.pids.max": "20"},
                          name="c1", layout=layout)
    cg.create(plan)
    for c in V1_CONTROLLERS:
        assert (tmp_path / "v1" / c / "pyl.payload.c1").is_dir()
    payload = tmp_path / "v1/cpuset/pyl.payload.c1"
    assert (payload / "cpuset.cpus").read_text() == "0-1" and (payload / "cpuset.mems").read_text() == "0"
    assert (tmp_path / "v1/memory/pyl.payload.c1/memory.limit_in_bytes").read_text() == "64M"
    assert (tmp_path / "v1/pids/pyl.payload.c1/pids.max").read_text() == "20"
    dev = [(Path(p).name, v) for p, v in writes if "/devices/" in p]
    assert dev[0] == ("devices.deny", "a") and ("devices.allow", "c 136:* rwm") in dev and len(dev) == 12

    cg.attach(plan, 4242)
    assert all((Path(d.path) / "cgroup.procs").read_text() == "4242" for d in plan.dirs)
    (Path(plan.dirs[0].path) / "sub").mkdir()  # a child cgroup made by the container goes too
    (tmp_path / "v1/memory/pyl.payload.c1/cgroup.procs").write_text("")
    for d in plan.dirs:
        (Path(d.path) / "cgroup.procs").write_text("")
    cg.destroy(plan)
    assert not list(tmp_path.rglob("pyl.*"))
    cg.destroy(plan)  # ENOENT is fine


def test_create_v2_enables_controllers_and_attaches_bpf(tmp_path, writes, fake_bpf):
    layout = v2_tree(tmp_path, "/svc")
    plan = cg.plan_cgroup({"lxc.cgroup2.memory.max": "64M", "lxc.cgroup2.pids.max": "20"},
                          name="c1", layout=layout)
    cg.create(plan)
    parent = tmp_path / "unified/svc"
    assert (parent / "cgroup.subtree_control").read_text() == "+cpuset +cpu +io +memory +pids"
    # controllers are enabled in the parent before the child exists, then limits are written
    order = [Path(p).name for p, _ in writes]
    assert order == ["cgroup.subtree_control", "memory.max", "pids.max"]
    assert (parent / "pyl.payload.c1/memory.max").read_text() == "64M"
    (d, default, rules), = fake_bpf
    assert d == str(parent / "pyl.payload.c1") and default is False
    assert ("c", 1, 3, "rwm", True) in rules and ("c", 136, None, "rwm", True) in rules
    cg.destroy(plan)
    assert not (parent / "pyl.payload.c1").exists()


def test_create_v2_skips_already_enabled_and_hybrid_leaves_unified_parent(tmp_path, writes, fake_bpf):
    layout = v2_tree(tmp_path)
    (tmp_path / "unified/cgroup.subtree_control").write_text("cpuset cpu io memory pids\n")
    cg.create(cg.plan_cgroup({}, name="a", layout=layout))
    assert not [p for p, _ in writes if p.endswith("subtree_control")]

    writes.clear()
    fake_bpf.clear()
    hyb = hybrid_tree(tmp_path / "h")
    (tmp_path / "h/unified/cgroup.controllers").write_text("hugetlb\n")
    plan = cg.plan_cgroup({}, name="b", layout=hyb)
    cg.create(plan)
    assert not [p for p, _ in writes if p.endswith("subtree_control")]  # hybrid: host root untouched
    assert (tmp_path / "h/unified/pyl.payload.b").is_dir() and not fake_bpf
    cg.destroy(plan)


def test_required_v2_controller_missing(tmp_path, fake_bpf):
    layout = v2_tree(tmp_path, controllers="cpu")
    with pytest.raises(StartError, match="'memory' is not available"):
        cg.create(cg.plan_cgroup({"lxc.cgroup2.memory.max": "1G"}, name="c", layout=layout))
    assert not list(tmp_path.rglob("pyl.*"))


def test_subtree_control_busy_names_the_monitor_cgroup(tmp_path, monkeypatch, fake_bpf):
    layout = v2_tree(tmp_path)
    real = apply.write_file

    def busy(path, value):
        if path.endswith("cgroup.subtree_control"):
            raise OSError(errno.EBUSY, os.strerror(errno.EBUSY))
        real(path, value)

    monkeypatch.setattr(apply, "write_file", busy)
    cg.create(cg.plan_cgroup({}, name="ok", layout=layout))  # optional controllers: carry on
    with pytest.raises(StartError) as e:
        cg.create(cg.plan_cgroup({"lxc.cgroup2.pids.max": "5"}, name="c", layout=layout))
    assert "errno 16" in e.value.message and "pyl.monitor" in e.value.hint


def test_rejected_limit_removes_everything(tmp_path, monkeypatch):
    layout = v1_tree(tmp_path)
    real = apply.write_file

    def kernel(path, value):
        if path.endswith("memory.limit_in_bytes") and value == "lots":
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
        real(path, value)

    monkeypatch.setattr(apply, "write_file", kernel)
    plan = cg.plan_cgroup({"lxc.cgroup.memory.limit_in_bytes": "lots"}, name="c1", layout=layout)
    with pytest.raises(StartError) as e:
        cg.create(plan)
    assert e.value.message == "cannot set lxc.cgroup.memory.limit_in_bytes = lots: Invalid argument (errno 22)"
    assert not list(tmp_path.rglob("pyl.*"))


def test_stale_payload_taken_over_but_busy_refused(tmp_path, fake_bpf):
    layout = v2_tree(tmp_path)
    plan = cg.plan_cgroup({}, name="c", layout=layout)
    stale = Path(plan.dirs[0].path)
    (stale / "leftover").mkdir(parents=True)
    cg.create(plan)
    assert not (stale / "leftover").exists()
    (stale / "cgroup.events").write_text("populated 1\nfrozen 0\n")
    with pytest.raises(StartError, match="holds processes"):
        cg.create(plan)


def test_monitor_plan_shared(tmp_path):
    layout = v1_tree(tmp_path)
    mon = cg.plan_monitor_cgroup(layout)
    cg.create(mon)
    cg.create(mon)  # a second supervisor joins the same cgroup
    assert (tmp_path / "v1/memory/pyl.monitor").is_dir()
    cg.destroy(mon)
    assert not list(tmp_path.rglob("pyl.*"))


def test_destroy_busy_raises(tmp_path, monkeypatch):
    layout = v1_tree(tmp_path)
    plan = cg.plan_cgroup({}, name="c", layout=layout)
    cg.create(plan)
    real_rmdir = os.rmdir

    def rmdir(path):
        if "memory" in path:
            raise OSError(errno.EBUSY, os.strerror(errno.EBUSY))
        real_rmdir(path)

    monkeypatch.setattr(apply.os, "rmdir", rmdir)
    with pytest.raises(BusyError, match="memory/pyl.payload.c"):
        cg.destroy(plan, retry=0.05)
    # the other hierarchies were still cleaned
    assert [p.parent.name for p in tmp_path.rglob("pyl.payload.c")] == ["memory"]


def test_freeze_v1(tmp_path):
    plan = cg.plan_cgroup({}, name="c", layout=v1_tree(tmp_path))
    cg.create(plan)
    state = tmp_path / "v1/freezer/pyl.payload.c/freezer.state"
    state.write_text("THAWED\n")
    assert cg.freezer_state(plan) == "THAWED"
    cg.freeze(plan, timeout=1)
    assert state.read_text() == "FROZEN" and cg.freezer_state(plan) == "FROZEN"
    cg.thaw(plan)
    assert cg.freezer_state(plan) == "THAWED"


class _StubbornV1Freezer:
    """freezer.state as the kernel keeps it when one task (a vfork parent) was asleep at the
    first request: FREEZING until FROZEN has been written `needed` times; THAWED resets."""

    def __init__(self, path, needed):
        self.path, self.needed, self.writes, self.state = path, needed, 0, "THAWED"

    def read(self, path):
        return self.state + "\n" if path == self.path else apply.read_file(path)

    def write(self, path, value):
        assert path == self.path
        self.writes += 1
        if value == "THAWED":
            self.state, self.writes = "THAWED", 0
        else:
            self.state = "FROZEN" if self.writes >= self.needed else "FREEZING"


@pytest.mark.parametrize("needed", [2, 5])
def test_freeze_v1_asks_again_while_freezing(tmp_path, monkeypatch, needed):
    from lxctools.runtime.cgroups import freezer
    plan = cg.plan_cgroup({}, name="c", layout=v1_tree(tmp_path))
    cg.create(plan)
    fake = _StubbornV1Freezer(str(tmp_path / "v1/freezer/pyl.payload.c/freezer.state"), needed)
    monkeypatch.setattr(freezer, "read_file", fake.read)
    monkeypatch.setattr(freezer, "write_file", fake.write)
    cg.freeze(plan, timeout=2)
    assert fake.state == "FROZEN" and fake.writes == needed


def test_freeze_v1_that_never_completes_times_out_and_thaws(tmp_path, monkeypatch):
    from lxctools.runtime.cgroups import freezer
    plan = cg.plan_cgroup({}, name="c", layout=v1_tree(tmp_path))
    cg.create(plan)
    fake = _StubbornV1Freezer(str(tmp_path / "v1/freezer/pyl.payload.c/freezer.state"), 10**9)
    monkeypatch.setattr(freezer, "read_file", fake.read)
    monkeypatch.setattr(freezer, "write_file", fake.write)
    with pytest.raises(TimeoutError_, match="did not freeze within 0.2 s"):
        cg.freeze(plan, timeout=0.2)
    assert fake.state == "THAWED"


def test_freeze_v2_and_timeout(tmp_path, fake_bpf):
    plan = cg.plan_cgroup({}, name="c", layout=v2_tree(tmp_path))
    cg.create(plan)
    d = Path(plan.dirs[0].path)
    (d / "cgroup.freeze").write_text("0\n")
    (d / "cgroup.events").write_text("populated 1\nfrozen 1\n")
    cg.freeze(plan, timeout=1)
    assert (d / "cgroup.freeze").read_text() == "1" and cg.freezer_state(plan) == "FROZEN"
    (d / "cgroup.events").write_text("populated 1\nfrozen 0\n")
    assert cg.freezer_state(plan) == "FREEZING"
    with pytest.raises(TimeoutError_):
        cg.freeze(plan, timeout=0.15)
    assert (d / "cgroup.freeze").read_text() == "0" and cg.freezer_state(plan) == "THAWED"
    assert cg.events_path(plan) == str(d / "cgroup.events")
    assert cg.populated(plan)


def test_procs_recursive_and_populated_v1(tmp_path):
    plan = cg.plan_cgroup({}, name="c", layout=v1_tree(tmp_path))
    cg.create(plan)
    fz = Path(plan.v1_dir("freezer").path)
    assert cg.procs(plan) == [] and not cg.populated(plan) and cg.events_path(plan) is None
    (fz / "cgroup.procs").write_text("10\n11\n")
    (fz / "inner").mkdir()
    (fz / "inner/cgroup.procs").write_text("12\n")
    assert cg.procs(plan) == [10, 11, 12] and cg.populated(plan)


def test_stats_v1(tmp_path):
    plan = cg.plan_cgroup({}, name="c", layout=v1_tree(tmp_path))
    cg.create(plan)
    p = {c: Path(plan.v1_dir(c).path) for c in V1_CONTROLLERS}
    hz = os.sysconf("SC_CLK_TCK")
    (p["cpuacct"] / "cpuacct.usage").write_text("1500000000\n")
    (p["cpuacct"] / "cpuacct.stat").write_text(f"user {2 * hz}\nsystem {hz}\n")
    (p["blkio"] / "blkio.throttle.io_service_bytes").write_text(
        "8:0 Read 4096\n8:0 Write 512\n8:0 Sync 0\n8:0 Total 4608\n8:16 Read 100\n8:16 Write 0\nTotal 4708\n")
    (p["memory"] / "memory.usage_in_bytes").write_text("1048576\n")
    (p["memory"] / "memory.kmem.usage_in_bytes").write_text("4096\n")
    (p["memory"] / "memory.memsw.usage_in_bytes").write_text("2097152\n")
    (p["memory"] / "memory.limit_in_bytes").write_text("9223372036854771712\n")
    (p["pids"] / "pids.current").write_text("3\n")
    s = cg.stats(plan)
    assert s == cg.CgroupStats(cpu_ns=1_500_000_000, cpu_user_ns=2_000_000_000, cpu_sys_ns=1_000_000_000,
                               blkio_bytes=(4196, 512), memory_bytes=1048576, kmem_bytes=4096,
                               memsw_bytes=2097152, swap_bytes=1048576, memory_limit=None, pids_current=3)
    (p["memory"] / "memory.limit_in_bytes").write_text("67108864\n")
    assert cg.stats(plan).memory_limit == 67108864


def test_stats_v2(tmp_path, fake_bpf):
    plan = cg.plan_cgroup({}, name="c", layout=v2_tree(tmp_path))
    cg.create(plan)
    d = Path(plan.dirs[0].path)
    (d / "cpu.stat").write_text("usage_usec 2500\nuser_usec 2000\nsystem_usec 500\nnr_periods 0\n")
    (d / "io.stat").write_text("8:0 rbytes=1000 wbytes=24 rios=3 wios=1 dbytes=0 dios=0\n"
                               "8:16 rbytes=1 wbytes=2 rios=1 wios=1 dbytes=0 dios=0\n")
    (d / "memory.current").write_text("8192\n")
    (d / "memory.stat").write_text("anon 4096\nfile 0\nkernel 1024\nkernel_stack 16\n")
    (d / "memory.swap.current").write_text("100\n")
    (d / "memory.max").write_text("max\n")
    (d / "pids.current").write_text("1\n")
    assert cg.stats(plan) == cg.CgroupStats(
        cpu_ns=2_500_000, cpu_user_ns=2_000_000, cpu_sys_ns=500_000, blkio_bytes=(1001, 26),
        memory_bytes=8192, kmem_bytes=1024, memsw_bytes=8292, swap_bytes=100, memory_limit=None,
        pids_current=1)


def test_stats_missing_files_are_none(tmp_path, fake_bpf):
    plan = cg.plan_cgroup({}, name="c", layout=v2_tree(tmp_path))
    cg.create(plan)
    assert cg.stats(plan) == cg.CgroupStats()


def test_read_write_value_routing_hybrid(tmp_path):
    layout = hybrid_tree(tmp_path)
    plan = cg.plan_cgroup({}, name="c", layout=layout)
    cg.create(plan)
    mem_v1 = Path(plan.v1_dir("memory").path)
    uni = Path(plan.unified.path)
    (mem_v1 / "memory.limit_in_bytes").write_text("9223372036854771712\n")
    (uni / "memory.max").write_text("max\n")
    (uni / "cgroup.type").write_text("domain\n")
    assert cg.read_value(plan, "memory.limit_in_bytes") == "9223372036854771712\n"
    assert cg.read_value(plan, "memory.max") == "max\n"
    assert cg.read_value(plan, "cgroup.type") == "domain\n"
    cg.write_value(plan, "memory.limit_in_bytes", "1G")
    assert (mem_v1 / "memory.limit_in_bytes").read_text() == "1G"
    with pytest.raises(NotFoundError, match="unknown cgroup controller 'bogus'"):
        cg.read_value(plan, "bogus.max")
    with pytest.raises(NotFoundError, match="no cgroup file 'memory.nothing'"):
        cg.write_value(plan, "memory.nothing", "1")
    for bad in ("../x.y", "memory", "", "a/b.c"):
        with pytest.raises(UsageError):
            cg.read_value(plan, bad)
    # No writer of cgroup files moves a process in (pyl-cgroup, through the supervisor or not).
    (uni / "cgroup.procs").write_text("")
    for key in ("cgroup.procs", " cgroup.threads"):
        with pytest.raises(UsageError, match="does not move processes"):
            cg.write_value(plan, key, "1")
    assert (uni / "cgroup.procs").read_text() == ""
    cg.destroy(plan)
    with pytest.raises(NotFoundError, match="does not exist"):
        cg.read_value(plan, "memory.usage_in_bytes")


def _frozen_v1_container(tmp_path):
    """A fake v1 container cgroup holding pids 101 and 102, frozen; returns (plan, freezer dir)."""
    plan = cg.plan_cgroup({}, name="c", layout=v1_tree(tmp_path))
    cg.create(plan)
    fz = Path(plan.v1_dir("freezer").path)
    (fz / "cgroup.procs").write_text("101\n102\n")
    (fz / "freezer.state").write_text("FROZEN\n")
    return plan, fz


def test_kill_all_fake_signals_each_pid(tmp_path, monkeypatch):
    plan, fz = _frozen_v1_container(tmp_path)
    sent = []

    def kill(pid, sig):
        sent.append((pid, sig))
        (fz / "cgroup.procs").write_text("")  # the "kernel" reaps them

    monkeypatch.setattr(apply.os, "kill", kill)
    cg.kill_all(plan, 9)
    assert sorted(sent) == [(101, 9), (102, 9)]
    assert (fz / "freezer.state").read_text() == "THAWED"  # v1: frozen tasks die only once thawed
    sent.clear()
    (fz / "cgroup.procs").write_text("7\n")
    cg.kill_all(plan, 15)
    assert sent == [(7, 15)]


def test_kill_all_without_waiting_signals_once_and_returns(tmp_path, monkeypatch):
    # The supervisor's stop -k: signal, thaw, and back to the event loop (init's exit arrives
    # there); nothing is waited for, even though the "kernel" here never empties the cgroup.
    plan, fz = _frozen_v1_container(tmp_path)
    sent = []
    monkeypatch.setattr(apply.os, "kill", lambda pid, sig: sent.append((pid, sig)))
    monkeypatch.setattr(apply.time, "sleep", lambda _s: (_ for _ in ()).throw(AssertionError("waited")))
    cg.kill_all(plan, 9, wait=False)
    assert sorted(sent) == [(101, 9), (102, 9)]
    assert (fz / "freezer.state").read_text() == "THAWED"


def test_required_controller_enabled_down_the_ancestors(tmp_path, monkeypatch, fake_bpf):
    layout = v2_tree(tmp_path, "/a/b", controllers="")
    root = tmp_path / "unified"
    for d, ctl in ((root, "memory pids"), (root / "a", "")):
        (d / "cgroup.controllers").write_text(ctl + "\n")
        (d / "cgroup.subtree_control").write_text("\n")
    real = apply.write_file

    def kernel(path, value):  # subtree_control makes the controllers appear in the children
        real(path, value)
        if path.endswith("cgroup.subtree_control"):
            parent = Path(path).parent
            for child in parent.iterdir():
                if child.is_dir():
                    (child / "cgroup.controllers").write_text(value.replace("+", ""))
            (Path(path)).write_text(value.replace("+", ""))

    monkeypatch.setattr(apply, "write_file", kernel)
    plan = cg.plan_cgroup({"lxc.cgroup2.memory.max": "1G"}, name="c", layout=layout)
    cg.create(plan)
    assert (root / "cgroup.subtree_control").read_text() == "memory"
    assert (root / "a/cgroup.subtree_control").read_text() == "memory"
    assert (root / "a/b/cgroup.subtree_control").read_text() == "memory"
    assert (root / "a/b/pyl.payload.c/memory.max").read_text() == "1G"


def test_a_cgroup_holding_processes_gets_no_controller_enabled(tmp_path, writes, fake_bpf):
    # Pure v2 under a login scope: the kernel refuses memory/io there (EBUSY) but takes cpu,
    # cpuset and pids, which make the cgroup a thread root: every child "domain invalid", and
    # every later move of a container's init fails with EOPNOTSUPP. Nothing is written there.
    layout = v2_tree(tmp_path, "/user.slice/session-1.scope")
    scope = tmp_path / "unified/user.slice/session-1.scope"
    (scope / "cgroup.type").write_text("domain\n")
    (scope / "cgroup.procs").write_text("812\n913\n")
    plan = cg.plan_cgroup({}, name="a", layout=layout)
    cg.create(plan)  # no limit asks for a controller: carry on without
    assert not [p for p, _ in writes if p.endswith("subtree_control")]
    cg.destroy(plan)
    with pytest.raises(StartError, match="cannot enable cgroup2 controller 'memory'.*holds processes"):
        cg.create(cg.plan_cgroup({"lxc.cgroup2.memory.max": "64M"}, name="b", layout=layout))
    assert not [p for p, _ in writes if p.endswith("subtree_control")]


def test_a_daemon_started_from_pyl_monitor_leaves_it(tmp_path, writes):
    # pyl-net's dnsmasq, started by the netlink worker inside pyl.monitor (pure v2), would keep
    # that cgroup after the supervisor: it goes where the supervisor came from.
    layout = v2_tree(tmp_path, "/pyl.monitor")
    (tmp_path / "unified/cgroup.procs").write_text("")
    assert cg.leave_monitor_cgroup(4242, layout)
    assert writes == [(str(tmp_path / "unified/cgroup.procs"), "4242")]
    writes.clear()
    assert not cg.leave_monitor_cgroup(4242, v2_tree(tmp_path, "/system.slice/x.service"))
    assert not cg.leave_monitor_cgroup(4242, hybrid_tree(tmp_path / "h"))
    assert writes == []
