"""Which cgroup hierarchies this host has, where they are mounted, and where the caller sits in each.

Read once from /proc/self/mountinfo and /proc/self/cgroup (both paths are parameters, so tests
feed sample texts whose mountpoints point into a temp dir). The result is plain data; nothing here
writes to the kernel.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from lxctools.errors import PylError

V1 = 1
V2 = 2


@dataclass(frozen=True)
class Hierarchy:
    """One mounted cgroup hierarchy.

    ``controllers``: v1 -> the controllers bound to it (a named hierarchy shows as "name=systemd");
    v2 -> the controllers available to the caller's cgroup (its cgroup.controllers).
    ``path``: the caller's cgroup inside the hierarchy, "/"-rooted, already relative to the mount.
    """

    version: int
    mountpoint: str
    controllers: tuple[str, ...]
    path: str

    @property
    def caller_dir(self) -> str:
        """Absolute directory of the caller's cgroup in this hierarchy."""
        return join(self.mountpoint, self.path)


@dataclass(frozen=True)
class CgroupLayout:
    kind: str  # "v1" | "v2" | "hybrid"
    hierarchies: tuple[Hierarchy, ...]

    @property
    def unified(self) -> Hierarchy | None:
        return next((h for h in self.hierarchies if h.version == V2), None)

    @property
    def legacy(self) -> tuple[Hierarchy, ...]:
        return tuple(h for h in self.hierarchies if h.version == V1)

    def v1_controller(self, controller: str) -> Hierarchy | None:
        return next((h for h in self.legacy if controller in h.controllers), None)


def join(mountpoint: str, cgpath: str) -> str:
    rel = cgpath.strip("/")
    return os.path.join(mountpoint, rel) if rel else mountpoint


_OCTAL = re.compile(r"\\([0-7]{3})")


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo.
    return _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), field)


@dataclass(frozen=True)
class _Mount:
    root: str
    mountpoint: str
    fstype: str
    superopts: frozenset[str]


def _parse_mountinfo(text: str) -> list[_Mount]:
    mounts = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        fields, tail = left.split(), right.split()
        if len(fields) < 5 or len(tail) < 3 or tail[0] not in ("cgroup", "cgroup2"):
            continue
        mounts.append(_Mount(_unescape(fields[3]), _unescape(fields[4]), tail[0], frozenset(tail[2].split(","))))
    # Prefer the conventional location when a hierarchy is mounted twice (bind mounts, nested setups).
    mounts.sort(key=lambda m: not m.mountpoint.startswith("/sys/fs/cgroup"))
    return mounts


def _relative(cgpath: str, mount_root: str) -> str:
    """Caller's path made relative to the mount's root (differs inside a cgroup namespace bind)."""
    if mount_root in ("", "/"):
        return cgpath or "/"
    if cgpath == mount_root or cgpath.startswith(mount_root.rstrip("/") + "/"):
        return cgpath[len(mount_root.rstrip("/")):] or "/"
    return cgpath or "/"


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError as e:
        raise PylError(f"cannot read {path}: {e.strerror}") from e


def _v2_controllers(directory: str, fallback: str) -> tuple[str, ...]:
    for d in (directory, fallback):
        try:
            with open(os.path.join(d, "cgroup.controllers")) as f:
                return tuple(f.read().split())
        except OSError:
            continue
    return ()


def parse_layout(mountinfo_text: str, self_cgroup_text: str) -> CgroupLayout:
    """detect_layout on texts already read (tests and /proc/PID/cgroup of another process)."""
    mounts = _parse_mountinfo(mountinfo_text)
    hierarchies: list[Hierarchy] = []
    seen_v2 = False
    for line in self_cgroup_text.splitlines():
        hid, sep, rest = line.partition(":")
        controllers, sep2, cgpath = rest.partition(":")
        if not sep or not sep2:
            continue
        if hid == "0" and controllers == "":
            mount = next((m for m in mounts if m.fstype == "cgroup2"), None)
            if mount is None or seen_v2:
                continue
            seen_v2 = True
            rel = _relative(cgpath, mount.root)
            # The supervisor sits in pyl.monitor; the payloads go beside it, so what counts is
            # what its parent offers, not pyl.monitor's own (often empty) cgroup.controllers.
            parent, _, leaf = rel.rstrip("/").rpartition("/")
            base = (parent or "/") if leaf == "pyl.monitor" else rel  # plan.MONITOR_NAME
            ctrls = _v2_controllers(join(mount.mountpoint, base), mount.mountpoint)
            hierarchies.append(Hierarchy(V2, mount.mountpoint, ctrls, rel))
            continue
        wanted = [c for c in controllers.split(",") if c]
        if not wanted:
            continue
        mount = next((m for m in mounts if m.fstype == "cgroup" and set(wanted) <= m.superopts), None)
        if mount is None:
            continue  # controller attached to a hierarchy nobody mounted: unusable, as LXC
        hierarchies.append(Hierarchy(V1, mount.mountpoint, tuple(wanted), _relative(cgpath, mount.root)))
    has_v1 = any(h.version == V1 for h in hierarchies)
    if not hierarchies:
        raise PylError("no cgroup hierarchy is mounted", hint="mount cgroup2 on /sys/fs/cgroup")
    kind = "hybrid" if has_v1 and seen_v2 else ("v1" if has_v1 else "v2")
    return CgroupLayout(kind, tuple(hierarchies))


def prune_init_scope(cgroup_text: str) -> str:
    """A /proc/1/cgroup text with systemd's /init.scope taken off each path: that leaf holds PID 1
    and may get no children; its parent (usually the root cgroup) is where LXC puts root's
    containers."""
    lines = []
    for line in cgroup_text.splitlines():
        hid, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if path.endswith("/init.scope"):
            path = path[:-len("/init.scope")] or "/"
        lines.append(f"{hid}:{controllers}:{path}")
    return "\n".join(lines) + "\n"


def detect_init_layout(mountinfo: str = "/proc/self/mountinfo", init_cgroup: str = "/proc/1/cgroup") -> CgroupLayout:
    """detect_layout placed at init's cgroup (without /init.scope): where root's supervisor
    makes pyl.monitor, and the containers beside it."""
    return parse_layout(_read(mountinfo), prune_init_scope(_read(init_cgroup)))


def detect_layout(mountinfo: str = "/proc/self/mountinfo", self_cgroup: str = "/proc/self/cgroup") -> CgroupLayout:
    """Hierarchies of this host and the calling process's place in each.

    Pass ``self_cgroup="/proc/1/cgroup"`` to place containers under init's cgroup as LXC does for
    root (usually "/", which the v2 no-internal-process rule exempts), or ``/proc/PID/cgroup`` of a
    container's init to find its cgroups from another cgroup (see plan_from_existing).
    """
    return parse_layout(_read(mountinfo), _read(self_cgroup))
