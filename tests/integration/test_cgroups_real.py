"""lxctools.runtime.cgroups on this host's real cgroupfs (hybrid here; v1, v2 elsewhere).

Every scenario runs in a forked child (reporting through a pipe) that forks its own workload, so
the pytest process never changes cgroup. Names are unique (pyl.payload.test-<hex>); each test
checks that nothing named after it is left anywhere under /sys/fs/cgroup.
"""

from __future__ import annotations

import errno
import os
import pickle
import secrets
import signal
import subprocess
import time
import traceback
from collections.abc import Callable

import pytest

from lxctools.errors import StartError
from lxctools.runtime import cgroups as cg

CGROOT = "/sys/fs/cgroup"


def _layout_or_none():
    """Where the supervisor puts containers: on pure v2 (root) under init's cgroup, not under
    pytest's, which on a systemd host is a login scope holding processes (no controller can be
    enabled below it; see monitor.supervisor's _leave_parent_cgroup)."""
    try:
        layout = cg.detect_layout()
        return cg.detect_init_layout() if layout.kind == "v2" and os.geteuid() == 0 else layout
    except Exception:
        return None


LAYOUT = _layout_or_none()
pytestmark = pytest.mark.skipif(os.geteuid() != 0 or LAYOUT is None, reason="needs root and a mounted cgroupfs")


def in_child(fn: Callable[[], object]) -> object:
    """Run fn in a forked child; return its result or fail with its traceback."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            payload = ("ok", fn())
        except BaseException:
            payload = ("err", traceback.format_exc())
        try:
            os.write(w, pickle.dumps(payload))
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        data = f.read()
    os.waitpid(pid, 0)
    status, value = pickle.loads(data)
    if status == "err":
        pytest.fail(f"child failed:\n{value}", pytrace=False)
    return value


def spawn(busy: bool = False) -> int:
    pid = os.fork()
    if pid == 0:
        try:
            if busy:
                while True:
                    pass
            while True:
                time.sleep(60)
        finally:
            os._exit(0)
    return pid


def reap(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def cpu_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def leftovers(name: str) -> list[str]:
    out = subprocess.run(["find", CGROOT, "-name", f"pyl.payload.{name}*"], capture_output=True, text=True)
    return out.stdout.split()


@pytest.fixture
def name():
    n = "test-" + secrets.token_hex(4)
    yield n
    left = leftovers(n)
    for path in sorted(left, key=len, reverse=True):  # best effort, then fail loudly
        try:
            os.rmdir(path)
        except OSError:
            pass
    assert not left, f"cgroups left behind: {left}"


def limit_values() -> tuple[dict[str, str], dict[str, str]]:
    """Config keys for a 64 MiB memory and 20 pids limit, and the files to read them back."""
    if LAYOUT.v1_controller("memory") is not None:
        mem = ({"lxc.cgroup.memory.limit_in_bytes": "64M"}, {"memory.limit_in_bytes": "67108864"})
    else:
        mem = ({"lxc.cgroup2.memory.max": "64M"}, {"memory.max": "67108864"})
    if LAYOUT.v1_controller("pids") is not None:
        pids = ({"lxc.cgroup.pids.max": "20"}, {"pids.max": "20"})
    else:
        pids = ({"lxc.cgroup2.pids.max": "20"}, {"pids.max": "20"})
    return {**mem[0], **pids[0]}, {**mem[1], **pids[1]}


def test_lifecycle_limits_kill_destroy(name):
    values, expect = limit_values()

    def scenario():
        plan = cg.plan_cgroup(values, name=name, layout=LAYOUT)
        pid = spawn()
        try:
            cg.create(plan)
            cg.attach(plan, pid)
            with open(f"/proc/{pid}/cgroup") as f:
                lines = f.read().splitlines()
            read_back = {k: cg.read_value(plan, k).strip() for k in expect}
            cg.write_value(plan, "pids.max", "30")
            after_write = cg.read_value(plan, "pids.max").strip()
            before = (cg.procs(plan), cg.populated(plan))
            cg.kill_all(plan)
            _, status = os.waitpid(pid, 0)
            after = (cg.procs(plan), cg.populated(plan))
            return lines, read_back, after_write, before, status, after
        finally:
            reap(pid)
            cg.destroy(plan)

    lines, read_back, after_write, before, status, after = in_child(scenario)
    assert all(line.endswith(f"/pyl.payload.{name}") for line in lines), lines
    assert read_back == expect
    assert after_write == "30"
    assert before[0] and before[1] is True
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    assert after == ([], False)


def test_freeze_stops_cpu_and_stats(name):
    def scenario():
        plan = cg.plan_cgroup({}, name=name, layout=LAYOUT)
        pid = spawn(busy=True)
        try:
            cg.create(plan)
            cg.attach(plan, pid)
            time.sleep(0.2)
            t0 = time.monotonic()
            cg.freeze(plan, timeout=5)
            freeze_s = time.monotonic() - t0
            state = cg.freezer_state(plan)
            a = cpu_ticks(pid)
            time.sleep(0.3)
            frozen_delta = cpu_ticks(pid) - a
            cg.thaw(plan)
            a = cpu_ticks(pid)
            time.sleep(0.3)
            thawed_delta = cpu_ticks(pid) - a
            t0 = time.monotonic()
            st = cg.stats(plan)
            stats_s = time.monotonic() - t0
            return freeze_s, state, frozen_delta, cg.freezer_state(plan), thawed_delta, st, stats_s
        finally:
            reap(pid)
            cg.destroy(plan)

    freeze_s, state, frozen_delta, state2, thawed_delta, st, stats_s = in_child(scenario)
    assert state == "FROZEN" and state2 == "THAWED"
    assert freeze_s < 0.5
    assert frozen_delta == 0
    assert thawed_delta > 0
    assert st.cpu_ns and st.cpu_ns > 0
    assert st.pids_current == 1
    print(f"\nstats read in {stats_s * 1000:.2f} ms")


def test_rejected_limit_is_start_error_and_cleans_up(name):
    key = "lxc.cgroup.memory.limit_in_bytes" if LAYOUT.v1_controller("memory") else "lxc.cgroup2.memory.max"

    def scenario():
        plan = cg.plan_cgroup({key: "lots"}, name=name, layout=LAYOUT)
        try:
            cg.create(plan)
        except StartError as e:
            return e.message, [os.path.exists(d.path) for d in plan.dirs]
        cg.destroy(plan)
        return None, []

    message, exists = in_child(scenario)
    assert message is not None and key in message and "lots" in message and "errno" in message
    assert not any(exists)


def _try_open(path: str) -> int:
    try:
        os.close(os.open(path, os.O_RDONLY | os.O_NONBLOCK))
        return 0
    except OSError as e:
        return e.errno


def _probe_devices(plan: cg.CgroupPlan, paths: list[str]) -> list[int]:
    """errno of opening each path from a process inside the plan's cgroup."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            cg.attach(plan, os.getpid())
            os.write(w, pickle.dumps([_try_open(p) for p in paths]))
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        data = f.read()
    os.waitpid(pid, 0)
    return pickle.loads(data)


@pytest.mark.cgroup_layouts("v1", "hybrid")
@pytest.mark.skipif(LAYOUT is None or LAYOUT.v1_controller("devices") is None or not os.path.exists("/dev/kmsg"),
                    reason="needs a v1 devices hierarchy and /dev/kmsg")
def test_v1_device_allow_list(name):
    def scenario():
        plan = cg.plan_cgroup({}, name=name, layout=LAYOUT)
        try:
            cg.create(plan)
            return _probe_devices(plan, ["/dev/null", "/dev/zero", "/dev/kmsg"])
        finally:
            cg.destroy(plan)

    assert in_child(scenario) == [0, 0, errno.EPERM]


@pytest.mark.skipif(LAYOUT is None or LAYOUT.unified is None or not os.path.exists("/dev/kmsg"),
                    reason="needs a cgroup2 mount and /dev/kmsg")
def test_pure_v2_path_on_the_unified_hierarchy(name):
    """The pure-v2 code path for real: BPF device program, cgroup.freeze + cgroup.events, cgroup.kill.

    Uses only the unified hierarchy, with no controllers, so no subtree_control is touched."""
    u = LAYOUT.unified
    v2_only = cg.CgroupLayout("v2", (cg.Hierarchy(2, u.mountpoint, (), u.path),))

    def scenario():
        plan = cg.plan_cgroup({"lxc.cgroup2.devices.deny": "a",
                               "lxc.cgroup2.devices.allow": ["c 1:3 rwm", "c 1:5 r"]},
                              name=name, layout=v2_only)
        assert plan.device_backend == "bpf"
        pid = spawn(busy=True)
        try:
            cg.create(plan)
            devs = _probe_devices(plan, ["/dev/null", "/dev/zero", "/dev/kmsg"])
            cg.attach(plan, pid)
            events = cg.events_path(plan)
            with open(events) as f:
                populated_line = [l for l in f.read().splitlines() if l.startswith("populated")]
            t0 = time.monotonic()
            cg.freeze(plan, timeout=5)
            freeze_s = time.monotonic() - t0
            state = cg.freezer_state(plan)
            a = cpu_ticks(pid)
            time.sleep(0.3)
            frozen_delta = cpu_ticks(pid) - a
            cg.kill_all(plan)  # cgroup.kill, even while frozen
            _, status = os.waitpid(pid, 0)
            return devs, populated_line, freeze_s, state, frozen_delta, status, cg.populated(plan)
        finally:
            reap(pid)
            cg.destroy(plan)

    devs, populated_line, freeze_s, state, frozen_delta, status, still = in_child(scenario)
    assert devs == [0, 0, errno.EPERM]
    assert populated_line == ["populated 1"]
    assert state == "FROZEN" and freeze_s < 0.5 and frozen_delta == 0
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    assert still is False


def test_plan_from_existing_via_init_cgroup(name):
    def scenario():
        plan = cg.plan_cgroup({}, name=name, layout=LAYOUT)
        pid = spawn()
        try:
            cg.create(plan)
            cg.attach(plan, pid)
            seen = cg.plan_from_existing(name, cg.detect_layout(self_cgroup=f"/proc/{pid}/cgroup"))
            mine = cg.plan_from_existing(name, LAYOUT)
            by_pid = cg.plan_from_existing(name, LAYOUT, pid=pid)
            assert [d.path for d in by_pid.dirs] == [d.path for d in plan.dirs]
            return [d.path for d in plan.dirs], [d.path for d in seen.dirs], [d.path for d in mine.dirs]
        finally:
            reap(pid)
            cg.destroy(plan)

    planned, seen, mine = in_child(scenario)
    assert planned == seen == mine


@pytest.mark.skipif(LAYOUT is None or LAYOUT.unified is None or not os.path.exists("/dev/kmsg"),
                    reason="needs a cgroup2 mount and /dev/kmsg")
def test_the_device_program_is_replaced_never_widened_in_between(name):
    """pyl-device on pure v2: a new program takes the attached one's place (one program left)."""
    from lxctools.kernel import bpf
    u = LAYOUT.unified
    v2_only = cg.CgroupLayout("v2", (cg.Hierarchy(2, u.mountpoint, (), u.path),))

    def attached(plan) -> int:
        fd = os.open(plan.unified.path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            return len(bpf.bpf_prog_query(fd, bpf.BPF_CGROUP_DEVICE))
        finally:
            os.close(fd)

    def scenario():
        plan = cg.plan_cgroup({"lxc.cgroup2.devices.deny": "a", "lxc.cgroup2.devices.allow": "c 1:3 rwm"},
                              name=name, layout=v2_only)
        try:
            cg.create(plan)
            before = _probe_devices(plan, ["/dev/null", "/dev/kmsg"]), attached(plan)
            bpf.replace_device_program(plan.unified.path, False, [("c", 1, 11, "rwm", True), ("c", 1, 3, "rwm", True)])
            granted = _probe_devices(plan, ["/dev/null", "/dev/kmsg"]), attached(plan)
            bpf.replace_device_program(plan.unified.path, False, [("c", 1, 3, "rwm", True)])
            taken = _probe_devices(plan, ["/dev/null", "/dev/kmsg"]), attached(plan)
            return before, granted, taken
        finally:
            cg.destroy(plan)

    before, granted, taken = in_child(scenario)
    assert before == ([0, errno.EPERM], 1)
    assert granted == ([0, 0], 1)
    assert taken == ([0, errno.EPERM], 1)
