"""Control groups for containers on cgroup v1, v2 and hybrid hosts: one backend, plan then apply.

    layout = detect_layout()                          # which hierarchies, where the caller sits
    plan = plan_cgroup(config, name="c1", layout=layout)   # pyl.payload.c1 in every hierarchy
    create(plan); attach(plan, pid)                   # mkdir, limits, device rules; move the init
    freeze(plan, 10); thaw(plan); stats(plan)          # while running
    kill_all(plan); destroy(plan)                     # teardown

Submodules: layout (mountinfo/cgroup parsing), devices (allow/deny rules), plan (paths and limits),
apply (create/attach/destroy/procs/kill/pyl-cgroup values), freezer, stats. Pure v2 device rules are
compiled to BPF by lxctools.kernel.bpf, imported only when needed. See plan_monitor_cgroup for what
the supervisor must do about cgroup v2's no-internal-process rule.
"""

from lxctools.runtime.cgroups.apply import (
    CgroupInUse, attach, attach_v2, create, destroy, enter_v1, events_path, fork_in_v2, kill_all,
    leave_monitor_cgroup, open_v2_dir,
    populated, procs,
    read_value, write_value,
)
from lxctools.runtime.cgroups.devices import (
    DEFAULT_DEVICE_POLICY, DEFAULT_DEVICE_RULES, DevicePolicy, DeviceRule, build_policy,
)
from lxctools.runtime.cgroups.freezer import freeze, freezer_state, thaw
from lxctools.runtime.cgroups.layout import (
    CgroupLayout, Hierarchy, detect_init_layout, detect_layout, parse_layout,
)
from lxctools.runtime.cgroups.plan import (
    MONITOR_NAME, PAYLOAD_PREFIX, CgroupDir, CgroupPlan, CgroupSetting, ignored_limits, plan_cgroup,
    plan_from_existing,
    plan_monitor_cgroup,
)
from lxctools.runtime.cgroups.stats import CgroupStats, stats

__all__ = [
    "CgroupInUse", "CgroupDir", "CgroupLayout", "CgroupPlan", "CgroupSetting", "CgroupStats", "DEFAULT_DEVICE_POLICY",
    "DEFAULT_DEVICE_RULES", "DevicePolicy", "DeviceRule", "Hierarchy", "MONITOR_NAME", "PAYLOAD_PREFIX",
    "attach", "attach_v2", "build_policy", "create", "destroy", "detect_init_layout", "detect_layout", "enter_v1", "events_path", "fork_in_v2", "freeze", "open_v2_dir",
    "freezer_state", "ignored_limits", "kill_all", "leave_monitor_cgroup", "parse_layout", "plan_cgroup", "plan_from_existing",
    "plan_monitor_cgroup", "populated", "procs", "read_value", "stats", "thaw", "write_value",
]
