"""Cgroup plans: which directories a container (or the supervisor) gets in each hierarchy, which
limits are written where, and which device policy applies. Pure data built from the config mapping
and a CgroupLayout; lxctools.runtime.cgroups.apply carries it out.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from lxctools.errors import InvalidNameError, StartError
from lxctools.runtime.cgroups.devices import DevicePolicy, config_policy
from lxctools.runtime.cgroups.layout import V1, V2, CgroupLayout, Hierarchy, join

PAYLOAD_PREFIX = "pyl.payload."
MONITOR_NAME = "pyl.monitor"

# lxc.cgroup.<these> are placement options, not controller files.
_PLACEMENT_KEYS = ("dir", "relative", "pattern")
# v2 files that belong to no controller (always present in a non-root cgroup).
_V2_CORE = "cgroup"


@dataclass(frozen=True)
class CgroupDir:
    """The plan's cgroup in one hierarchy."""

    version: int
    mountpoint: str
    controllers: tuple[str, ...]
    parent: str  # caller's cgroup directory, where ``path`` is created
    path: str


@dataclass(frozen=True)
class CgroupSetting:
    key: str     # config key, for messages: "lxc.cgroup2.memory.max"
    file: str    # absolute path of the control file
    value: str


@dataclass(frozen=True)
class CgroupPlan:
    name: str                         # directory name: pyl.payload.NAME or pyl.monitor
    kind: str                         # layout kind
    dirs: tuple[CgroupDir, ...]
    settings: tuple[CgroupSetting, ...] = ()
    required_v2_controllers: tuple[str, ...] = ()  # must end up enabled in the parent (limits need them)
    devices: DevicePolicy | None = None
    device_backend: str | None = None  # "v1" (devices.allow/deny) | "bpf" (pure v2) | None
    exclusive: bool = True             # False: shared (pyl.monitor), created if missing, kept while busy

    @property
    def unified(self) -> CgroupDir | None:
        return next((d for d in self.dirs if d.version == V2), None)

    def v1_dir(self, controller: str) -> CgroupDir | None:
        return next((d for d in self.dirs if d.version == V1 and controller in d.controllers), None)

    def controller_dir(self, controller: str) -> CgroupDir | None:
        """Where ``controller``'s files are: its v1 hierarchy, else the unified one if it has it."""
        d = self.v1_dir(controller)
        if d is not None:
            return d
        u = self.unified
        return u if u is not None and controller in u.controllers else None

    @property
    def primary(self) -> CgroupDir:
        """Directory whose cgroup.procs/events speak for the whole container."""
        return self.unified or self.v1_dir("freezer") or self.dirs[0]


def _check_name(cgname: str) -> None:
    if "/" in cgname or cgname in (".", "..") or "\n" in cgname or "\0" in cgname:
        raise InvalidNameError(f"{cgname!r} cannot be a cgroup name")


def _base_dir(h: Hierarchy) -> str:
    """Where pyl's cgroups go in ``h``: the caller's cgroup, or its parent when the caller is the
    supervisor already inside pyl.monitor (payloads are siblings of pyl.monitor, never children)."""
    parts = [p for p in h.path.split("/") if p]
    if parts and parts[-1] == MONITOR_NAME:
        parts.pop()
    return join(h.mountpoint, "/".join(parts))


def _dirs(layout: CgroupLayout, cgname: str) -> tuple[CgroupDir, ...]:
    _check_name(cgname)
    out = []
    for h in layout.hierarchies:
        base = _base_dir(h)
        out.append(CgroupDir(h.version, h.mountpoint, h.controllers, base, os.path.join(base, cgname)))
    return tuple(out)


def _values(v: str | list[str]) -> list[str]:
    from lxctools.config import lines
    return lines(v)


def _setting_order(s: CgroupSetting) -> int:
    # The kernel refuses memory.memsw.limit_in_bytes below memory.limit_in_bytes: write it last,
    # as LXC does (sort_cgroup_settings).
    return 1 if os.path.basename(s.file).startswith("memory.memsw.") else 0


def plan_cgroup(
    values: Mapping[str, str | list[str]],
    *,
    name: str,
    layout: CgroupLayout,
    base: dict | None = None,
) -> CgroupPlan:
    """Plan ``pyl.payload.NAME`` under the caller's cgroup in every hierarchy.

    ``base`` optionally overrides placement: {"parents": {mountpoint: parent_dir}} puts the cgroup
    under another directory of that hierarchy (lxc.cgroup.dir-like use, tests).
    Limits: lxc.cgroup.CTRL.FILE only on v1 hierarchies (ignored on pure v2), lxc.cgroup2.FILE only
    on the unified one (ignored on pure v1). Devices: see devices.build_policy; absent keys give
    LXC's default allow-list.
    """
    cgname = PAYLOAD_PREFIX + name
    dirs = _dirs(layout, cgname)
    if base and base.get("parents"):
        parents: dict[str, str] = base["parents"]
        dirs = tuple(
            CgroupDir(d.version, d.mountpoint, d.controllers, parents[d.mountpoint],
                      os.path.join(parents[d.mountpoint], cgname)) if d.mountpoint in parents else d
            for d in dirs
        )
    settings: list[CgroupSetting] = []
    required: list[str] = []
    has_v1 = any(d.version == V1 for d in dirs)
    unified = next((d for d in dirs if d.version == V2), None)
    for key, raw in values.items():
        if key.startswith("lxc.cgroup2."):
            rest = key[len("lxc.cgroup2."):]
            if rest.startswith("devices.") or unified is None:
                continue
            controller = rest.split(".", 1)[0]
            if "." not in rest:
                raise StartError(f"{key}: not a cgroup2 file name")
            if controller != _V2_CORE and controller not in required:
                required.append(controller)
            settings += [CgroupSetting(key, os.path.join(unified.path, rest), v) for v in _values(raw)]
        elif key.startswith("lxc.cgroup."):
            rest = key[len("lxc.cgroup."):]
            if rest.startswith("devices.") or rest.split(".", 1)[0] in _PLACEMENT_KEYS or not has_v1:
                continue
            controller = rest.split(".", 1)[0]
            target = next((d for d in dirs if d.version == V1 and controller in d.controllers), None)
            if target is None or "." not in rest:
                raise StartError(f"{key}: no cgroup v1 hierarchy has controller '{controller}'")
            settings += [CgroupSetting(key, os.path.join(target.path, rest), v) for v in _values(raw)]
    settings.sort(key=_setting_order)

    devices, backend = _device_plan(values, dirs)
    return CgroupPlan(cgname, layout.kind, dirs, tuple(settings), tuple(required), devices, backend)


def ignored_limits(values: Mapping[str, object], plan: CgroupPlan) -> list[str]:
    """Warnings for the limit keys plan_cgroup left out because this host has no hierarchy of
    their version: lxc.cgroup.* on pure v2 (a container would run without the memory limit its
    config asks for, silently), lxc.cgroup2.* on pure v1."""
    has_v1, has_v2 = any(d.version == V1 for d in plan.dirs), plan.unified is not None
    lost = []
    for key in values:
        if key.startswith("lxc.cgroup2."):
            if not has_v2 and not key.startswith("lxc.cgroup2.devices."):
                lost.append((key, "cgroup v2", "lxc.cgroup.*"))
        elif key.startswith("lxc.cgroup.") and not has_v1:
            rest = key[len("lxc.cgroup."):]
            if not rest.startswith("devices.") and rest.split(".", 1)[0] not in _PLACEMENT_KEYS:
                lost.append((key, "cgroup v1", "lxc.cgroup2.*"))
    return [f"{key} is ignored: this host has no {kind} hierarchy (use {other} keys)"
            for key, kind, other in lost]


def _device_plan(values: Mapping[str, str | list[str]], dirs: tuple[CgroupDir, ...]
                 ) -> tuple[DevicePolicy | None, str | None]:
    if any(d.version == V1 and "devices" in d.controllers for d in dirs):
        prefix, backend = "lxc.cgroup.devices", "v1"
    elif any(d.version == V2 for d in dirs) and not any(d.version == V1 for d in dirs):
        prefix, backend = "lxc.cgroup2.devices", "bpf"
    else:
        return None, None  # v1 without a devices hierarchy (or hybrid without one): nothing to enforce with
    policy = config_policy(values, prefix)
    return (policy, backend) if policy is not None else (None, None)


def plan_monitor_cgroup(layout: CgroupLayout) -> CgroupPlan:
    """The supervisor's shared cgroup, ``pyl.monitor``, beside the payload cgroups.

    Why it exists (cgroup v2 "no internal processes"): a non-root cgroup may not both hold
    processes and enable controllers for its children. create() of a payload writes the parent's
    cgroup.subtree_control, so before that the supervisor must leave the parent:
        create(plan_monitor_cgroup(layout)); attach(monitor_plan, os.getpid())
    and nothing else may live in the parent (a service cgroup with Delegate=yes, or the root cgroup,
    which is exempt -- detect_layout(self_cgroup="/proc/1/cgroup") places containers there as LXC
    does for root). If the parent still holds processes, create() fails naming this.
    """
    return CgroupPlan(MONITOR_NAME, layout.kind, _dirs(layout, MONITOR_NAME), exclusive=False)


def _paths_of_pid(text: str, layout: CgroupLayout) -> dict[Hierarchy, str]:
    """Map the layout's hierarchies to the paths in a /proc/PID/cgroup text."""
    by_key: dict[str, str] = {}
    for line in text.splitlines():
        hid, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        by_key["" if hid == "0" and not controllers else ",".join(sorted(controllers.split(",")))] = path
    out = {}
    for h in layout.hierarchies:
        key = "" if h.version == V2 else ",".join(sorted(h.controllers))
        if key in by_key:
            out[h] = by_key[key]
    return out


def plan_from_existing(name: str, layout: CgroupLayout, *, pid: int | None = None,
                       proc: str = "/proc") -> CgroupPlan:
    """Paths of a running container's cgroup, without its config (info, ps, top, pyl-cgroup).

    By default the container is looked for beside the caller's cgroup (or beside pyl.monitor).
    Give ``pid`` (the container's init, or any process of it) when the caller may sit elsewhere --
    other shells, cron, pyl-ls run from another session -- and the paths are taken from
    PROC/PID/cgroup instead; a path inside pyl.payload.NAME (even a sub-cgroup made by the
    container's own init) is cut back to it. An unreadable PROC/PID/cgroup falls back to the default.
    """
    cgname = PAYLOAD_PREFIX + name
    _check_name(cgname)
    paths: dict[Hierarchy, str] = {}
    if pid is not None:
        try:
            with open(os.path.join(proc, str(pid), "cgroup")) as f:
                paths = _paths_of_pid(f.read(), layout)
        except OSError:
            paths = {}
    dirs = []
    found = cgname
    for h in layout.hierarchies:
        parts = [p for p in paths.get(h, h.path).split("/") if p]
        # pyl.payload.NAME, or pyl.payload.NAME-N when another lxcpath's NAME held the name
        own = [i for i, p in enumerate(parts)
               if p == cgname or (p.startswith(cgname + "-") and p[len(cgname) + 1:].isdigit())]
        here = cgname
        if own:
            here = found = parts[own[0]]
            parts = parts[: own[0]]
        elif parts and parts[-1] == MONITOR_NAME:
            parts.pop()
        parent = join(h.mountpoint, "/".join(parts))
        dirs.append(CgroupDir(h.version, h.mountpoint, h.controllers, parent, os.path.join(parent, here)))
    return CgroupPlan(found, layout.kind, tuple(dirs))
