"""Layout detection from sample mountinfo/cgroup texts, plans, device rule folding."""

from __future__ import annotations

import pytest

from lxctools.errors import ConfigError, InvalidNameError, StartError
from lxctools.runtime import cgroups as cg
from lxctools.runtime.cgroups.devices import build_policy, parse_rule

HYBRID_MOUNTINFO = """\
22 28 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""
HYBRID_CGROUP = """\
9:name=systemd:/
6:freezer:/
5:devices:/
4:memory:/process_api/abc
2:cpuacct:/
1:cpu:/
0::/
"""

V1_MOUNTINFO = """\
25 24 0:22 / /sys/fs/cgroup rw - tmpfs tmpfs ro,mode=755
26 25 0:23 / /sys/fs/cgroup/cpu,cpuacct rw shared:9 - cgroup cgroup rw,cpu,cpuacct
27 25 0:24 / /sys/fs/cgroup/net_cls,net_prio rw shared:10 - cgroup cgroup rw,net_cls,net_prio
28 25 0:25 / /sys/fs/cgroup/memory rw shared:11 - cgroup cgroup rw,memory
"""
V1_CGROUP = "4:memory:/user.slice\n3:net_cls,net_prio:/\n2:cpu,cpuacct:/user.slice\n"

V2_MOUNTINFO = "25 30 0:22 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n"
V2_CGROUP = "0::/system.slice/pyl.service\n"


def test_detect_hybrid(tmp_path):
    (tmp_path / "mi").write_text(HYBRID_MOUNTINFO)
    (tmp_path / "cg").write_text(HYBRID_CGROUP)
    layout = cg.detect_layout(str(tmp_path / "mi"), str(tmp_path / "cg"))
    assert layout.kind == "hybrid"
    assert layout.unified is not None and layout.unified.mountpoint == "/sys/fs/cgroup/unified"
    mem = layout.v1_controller("memory")
    assert mem.mountpoint == "/sys/fs/cgroup/memory" and mem.path == "/process_api/abc"
    assert mem.caller_dir == "/sys/fs/cgroup/memory/process_api/abc"
    assert layout.v1_controller("name=systemd").mountpoint == "/sys/fs/cgroup/systemd"


def test_detect_v1_comounted():
    layout = cg.parse_layout(V1_MOUNTINFO, V1_CGROUP)
    assert layout.kind == "v1" and layout.unified is None
    cpu = layout.v1_controller("cpuacct")
    assert cpu is layout.v1_controller("cpu")
    assert cpu.mountpoint == "/sys/fs/cgroup/cpu,cpuacct" and cpu.controllers == ("cpu", "cpuacct")
    assert layout.v1_controller("net_prio").path == "/"


def test_detect_v2_reads_controllers(tmp_path):
    root = tmp_path / "cgroup"
    (root / "system.slice/pyl.service").mkdir(parents=True)
    (root / "cgroup.controllers").write_text("cpuset cpu io memory hugetlb pids rdma misc\n")
    (root / "system.slice/pyl.service/cgroup.controllers").write_text("cpu io memory pids\n")
    layout = cg.parse_layout(V2_MOUNTINFO.replace("/sys/fs/cgroup", str(root)), V2_CGROUP)
    assert layout.kind == "v2"
    assert layout.unified.controllers == ("cpu", "io", "memory", "pids")
    assert layout.unified.caller_dir == str(root / "system.slice/pyl.service")


def test_detect_cgroup_namespace_bind_root():
    # Inside a container: the hierarchy is a bind of /lxc.payload.c1, /proc/self/cgroup shows "/".
    mi = "40 31 0:38 /lxc.payload.c1 /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"
    assert cg.parse_layout(mi, "0::/lxc.payload.c1/init.scope\n").unified.path == "/init.scope"


def test_detect_escaped_mountpoint():
    mi = r"41 31 0:38 / /mnt/my\040cg rw - cgroup2 cgroup2 rw" + "\n"
    assert cg.parse_layout(mi, "0::/\n").unified.mountpoint == "/mnt/my cg"


def _v2_layout(path="/"):
    return cg.CgroupLayout("v2", (cg.Hierarchy(2, "/cg", ("cpu", "io", "memory", "pids"), path),))


def _hybrid_layout():
    return cg.parse_layout(HYBRID_MOUNTINFO, HYBRID_CGROUP)


def test_plan_paths_hybrid():
    plan = cg.plan_cgroup({}, name="c1", layout=_hybrid_layout())
    paths = {d.mountpoint: d.path for d in plan.dirs}
    assert paths["/sys/fs/cgroup/memory"] == "/sys/fs/cgroup/memory/process_api/abc/pyl.payload.c1"
    assert paths["/sys/fs/cgroup/unified"] == "/sys/fs/cgroup/unified/pyl.payload.c1"
    assert plan.name == "pyl.payload.c1" and plan.kind == "hybrid"
    assert plan.primary.version == 2  # populated/procs are read from the unified cgroup
    assert plan.device_backend == "v1" and plan.devices == cg.DEFAULT_DEVICE_POLICY


def test_plan_limits_routed_by_kind():
    values = {
        "lxc.cgroup.memory.limit_in_bytes": "256M",
        "lxc.cgroup.memory.memsw.limit_in_bytes": "512M",
        "lxc.cgroup2.memory.max": "256M",
        "lxc.cgroup.dir": "ignored/placement",
        "lxc.uts.name": "c1",
    }
    # memsw comes first in the mapping but must be written after limit_in_bytes
    values = dict(reversed(list(values.items())))
    hybrid = cg.plan_cgroup(values, name="c1", layout=_hybrid_layout())
    files = [(s.key, s.file.rsplit("/", 2)[-2:]) for s in hybrid.settings]
    assert files == [
        ("lxc.cgroup2.memory.max", ["pyl.payload.c1", "memory.max"]),
        ("lxc.cgroup.memory.limit_in_bytes", ["pyl.payload.c1", "memory.limit_in_bytes"]),
        ("lxc.cgroup.memory.memsw.limit_in_bytes", ["pyl.payload.c1", "memory.memsw.limit_in_bytes"]),
    ]
    assert hybrid.settings[0].file.startswith("/sys/fs/cgroup/unified/")
    assert hybrid.required_v2_controllers == ("memory",)

    v2 = cg.plan_cgroup(values, name="c1", layout=_v2_layout())
    assert [(s.file, s.value) for s in v2.settings] == [("/cg/pyl.payload.c1/memory.max", "256M")]

    v1 = cg.plan_cgroup(values, name="c1", layout=cg.parse_layout(V1_MOUNTINFO, V1_CGROUP))
    assert [s.key for s in v1.settings] == ["lxc.cgroup.memory.limit_in_bytes",
                                            "lxc.cgroup.memory.memsw.limit_in_bytes"]


def test_plan_multivalue_and_unknown_v1_controller():
    plan = cg.plan_cgroup({"lxc.cgroup2.io.max": ["8:0 rbps=1", "8:16 wbps=2"]}, name="c", layout=_v2_layout())
    assert [s.value for s in plan.settings] == ["8:0 rbps=1", "8:16 wbps=2"]
    with pytest.raises(StartError, match="lxc.cgroup.bogus.x.*bogus"):
        cg.plan_cgroup({"lxc.cgroup.bogus.x": "1"}, name="c", layout=_hybrid_layout())
    # v1 keys are ignored on a pure v2 host
    assert cg.plan_cgroup({"lxc.cgroup.bogus.x": "1"}, name="c", layout=_v2_layout()).settings == ()


def test_plan_v2_devices_are_bpf_and_use_cgroup2_keys():
    plan = cg.plan_cgroup({"lxc.cgroup.devices.allow": "c 4:* rwm"}, name="c", layout=_v2_layout())
    assert plan.device_backend == "bpf" and plan.devices == cg.DEFAULT_DEVICE_POLICY
    plan = cg.plan_cgroup({"lxc.cgroup2.devices.deny": "a", "lxc.cgroup2.devices.allow": ["c 1:3 rw"]},
                          name="c", layout=_v2_layout())
    assert plan.devices.default_allow is False
    assert [r.v1_text() for r in plan.devices.rules] == ["c 1:3 rw"]


def test_plan_devices_cleared_by_empty_keys():
    plan = cg.plan_cgroup({"lxc.cgroup.devices.allow": "", "lxc.cgroup.devices.deny": ""},
                          name="c", layout=_hybrid_layout())
    assert plan.devices is None and plan.device_backend is None


def test_plan_invalid_names():
    for bad in ("a/b", "../x", "x\ny"):
        with pytest.raises(InvalidNameError):
            cg.plan_cgroup({}, name=bad, layout=_v2_layout())
        with pytest.raises(InvalidNameError):
            cg.plan_from_existing(bad, _v2_layout())


def test_monitor_plan_is_shared_sibling():
    mon = cg.plan_monitor_cgroup(_v2_layout("/system.slice/pyl.service"))
    assert mon.name == "pyl.monitor" and not mon.exclusive
    assert mon.dirs[0].path == "/cg/system.slice/pyl.service/pyl.monitor"
    assert mon.settings == () and mon.devices is None


def test_plan_from_existing_cuts_back_to_payload():
    # Layout detected from the init's /proc/PID/cgroup, which systemd-in-container moved to init.scope.
    layout = cg.parse_layout(V2_MOUNTINFO, "0::/system.slice/pyl.payload.web/init.scope\n")
    plan = cg.plan_from_existing("web", layout)
    assert plan.dirs[0].path == "/sys/fs/cgroup/system.slice/pyl.payload.web"
    # From the caller's own layout it is a child of the caller's cgroup.
    plan = cg.plan_from_existing("web", _v2_layout("/system.slice"))
    assert plan.dirs[0].path == "/cg/system.slice/pyl.payload.web"


def test_default_policy_is_common_conf_allow_list():
    p = cg.DEFAULT_DEVICE_POLICY
    assert p.default_allow is False and p.reset is True
    assert p.v1_writes()[0] == ("devices.deny", "a")
    texts = [line for _f, line in p.v1_writes()[1:]]
    assert texts == ["c *:* m", "b *:* m", "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm",
                     "c 1:9 rwm", "c 5:0 rwm", "c 5:2 rwm", "c 136:* rwm", "c 10:229 rwm"]
    assert all(f == "devices.allow" for f, _ in p.v1_writes()[1:])


def test_policy_folding():
    # deny-list: specific allows are redundant, denies kept
    p = build_policy(["a", "c 1:3 rwm"], ["c 4:1 w"], prefix="k")
    assert p.default_allow and p.reset and [r.v1_text() for r in p.rules] == ["c 4:1 w"]
    # no reset: inherit (allow) and keep denies only
    p = build_policy(["c 1:3"], ["b 8:* rw"], prefix="k")
    assert p.default_allow and not p.reset and [r.v1_text() for r in p.rules] == ["b 8:* rw"]
    # both resets: the allow-list wins
    assert build_policy(["a"], ["a"], prefix="k").default_allow is False
    assert parse_rule("c 1:3", True, "k").access == "rwm"
    assert parse_rule("c 1:3 mwr", True, "k").access == "rwm"
    for bad in ("x 1:3 r", "c 1 r", "c 1:3 rx", "c a:b r"):
        with pytest.raises(ConfigError, match="k.allow"):
            parse_rule(bad, True, "k.allow")
    # pyl-device's rules and a grant record come here without the config's validator
    assert parse_rule("c 4095:1048575 r", True, "k").minor == 1048575
    for bad in ("c 4096:0 r", "b *:1048576 rw", "c 99999999999:0 rwm"):
        with pytest.raises(ConfigError, match="k.allow = .*no device has the number"):
            parse_rule(bad, True, "k.allow")


def test_plans_from_inside_pyl_monitor_are_siblings():
    layout = _v2_layout("/svc/pyl.monitor")
    assert cg.plan_cgroup({}, name="c", layout=layout).dirs[0].path == "/cg/svc/pyl.payload.c"
    assert cg.plan_monitor_cgroup(layout).dirs[0].path == "/cg/svc/pyl.monitor"
    assert cg.plan_from_existing("c", layout).dirs[0].path == "/cg/svc/pyl.payload.c"


def test_plan_from_existing_with_pid(tmp_path):
    (tmp_path / "77").mkdir()
    (tmp_path / "77/cgroup").write_text(
        "9:name=systemd:/pyl.payload.c\n4:memory:/process_api/other/pyl.payload.c\n"
        "2:cpuacct:/pyl.payload.c/init.scope\n1:cpu:/pyl.payload.c\n6:freezer:/pyl.payload.c\n"
        "5:devices:/pyl.payload.c\n0::/pyl.payload.c\n")
    plan = cg.plan_from_existing("c", _hybrid_layout(), pid=77, proc=str(tmp_path))
    paths = {d.mountpoint: d.path for d in plan.dirs}
    assert paths["/sys/fs/cgroup/memory"] == "/sys/fs/cgroup/memory/process_api/other/pyl.payload.c"
    assert paths["/sys/fs/cgroup/cpuacct"] == "/sys/fs/cgroup/cpuacct/pyl.payload.c"
    # gone process: fall back to the caller's layout
    plan = cg.plan_from_existing("c", _hybrid_layout(), pid=78, proc=str(tmp_path))
    assert {d.mountpoint: d.path for d in plan.dirs}["/sys/fs/cgroup/memory"] == \
        "/sys/fs/cgroup/memory/process_api/abc/pyl.payload.c"


def test_the_supervisor_in_pyl_monitor_offers_its_parents_controllers(tmp_path):
    # pyl.monitor's own cgroup.controllers is empty until something is enabled in it; the
    # payloads go beside it, so the parent's list is what containers can have.
    root = tmp_path / "cgroup"
    (root / "pyl.monitor").mkdir(parents=True)
    (root / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    (root / "pyl.monitor/cgroup.controllers").write_text("\n")
    layout = cg.parse_layout(V2_MOUNTINFO.replace("/sys/fs/cgroup", str(root)), "0::/pyl.monitor\n")
    assert layout.unified.controllers == ("cpuset", "cpu", "io", "memory", "pids")
    assert layout.unified.path == "/pyl.monitor"


def test_roots_containers_go_under_inits_cgroup_without_init_scope(tmp_path):
    root = tmp_path / "cgroup"
    root.mkdir()
    (root / "cgroup.controllers").write_text("cpu memory pids\n")
    (tmp_path / "mi").write_text(V2_MOUNTINFO.replace("/sys/fs/cgroup", str(root)))
    (tmp_path / "init").write_text("0::/init.scope\n")
    layout = cg.detect_init_layout(str(tmp_path / "mi"), str(tmp_path / "init"))
    assert layout.unified.path == "/" and layout.unified.controllers == ("cpu", "memory", "pids")
    assert cg.parse_layout(V2_MOUNTINFO, "0::/\n").unified.path == "/"
    from lxctools.runtime.cgroups.layout import prune_init_scope
    assert prune_init_scope("0::/init.scope\n1:name=systemd:/init.scope\n") == "0::/\n1:name=systemd:/\n"
    assert prune_init_scope("0::/system.slice/x.service\n") == "0::/system.slice/x.service\n"


def test_limits_of_a_version_the_host_lacks_are_warned_about():
    values = {"lxc.cgroup.memory.limit_in_bytes": "64M", "lxc.cgroup.devices.allow": "c 1:3 rwm",
              "lxc.cgroup.relative": "0", "lxc.cgroup2.pids.max": "20"}
    v2 = cg.plan_cgroup({"lxc.cgroup2.pids.max": "20"}, name="c1", layout=_v2_layout())
    assert cg.ignored_limits(values, v2) == [
        "lxc.cgroup.memory.limit_in_bytes is ignored: this host has no cgroup v1 hierarchy (use lxc.cgroup2.* keys)"]
    hybrid = cg.plan_cgroup({}, name="c1", layout=_hybrid_layout())
    assert cg.ignored_limits(values, hybrid) == []
    v1 = cg.plan_cgroup({}, name="c1", layout=cg.parse_layout(V1_MOUNTINFO, V1_CGROUP))
    assert cg.ignored_limits(values, v1) == [
        "lxc.cgroup2.pids.max is ignored: this host has no cgroup v2 hierarchy (use lxc.cgroup.* keys)"]
