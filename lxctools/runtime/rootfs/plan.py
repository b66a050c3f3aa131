"""The rootfs plan: config keys -> an ordered tuple of frozen mount operations (pure; see
__init__ for the whole picture)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Union

from lxctools.config import lines as config_lines
from lxctools.errors import ConfigError
from lxctools.kernel import mount as k
from lxctools.kernel.mount import (
    MS_BIND, MS_DIRSYNC, MS_LAZYTIME, MS_MANDLOCK, MS_NOATIME, MS_NODEV, MS_NODIRATIME, MS_NOEXEC,
    MS_NOSUID, MS_NOSYMFOLLOW, MS_PRIVATE, MS_RDONLY, MS_REC, MS_RELATIME, MS_SHARED, MS_SILENT, MS_SLAVE,
    MS_STRICTATIME, MS_SYNCHRONOUS, MS_UNBINDABLE,
)

Create = Literal["dir", "file"] | None
CgroupLayout = Sequence[tuple[str, str, str]]  # (name under /sys/fs/cgroup, fstype, super options)

DEFAULT_AUTODEV_TMPFS_SIZE = 500000
DEFAULT_CGROUP_ROOT = "/sys/fs/cgroup"

# ---------------------------------------------------------------------------------------------
# Plan: operations are plain frozen values; `origin` names the config that asked for them, so a
# failure message points at the line to fix.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RootfsBind:
    """Bind the rootfs directory onto itself: pivot_root wants a mount point."""

    path: str
    origin: str = "lxc.rootfs.path"


@dataclass(frozen=True)
class RootfsOverlay:
    """Assemble an overlay (lowers read-only, upper + workdir writable) on `target`."""

    lowers: tuple[str, ...]
    upper: str
    workdir: str
    target: str
    data: str = ""
    origin: str = "lxc.rootfs.path"

    @property
    def path(self) -> str:
        return self.target


@dataclass(frozen=True)
class MountFs:
    """A new filesystem instance (proc, sysfs, tmpfs, devpts, cgroup...) at `target` in the rootfs."""

    fstype: str
    source: str
    target: str
    flags: int = 0
    data: str = ""
    fallback_data: tuple[str, ...] = ()  # tried in order on EINVAL (devpts gid=5 under a userns)
    propagation: int = 0
    create: Create = "dir"
    optional: bool = False
    origin: str = ""


@dataclass(frozen=True)
class BindMount:
    """Clone `source` (a host path, or a rootfs path when source_in_rootfs) onto `target`."""

    source: str
    target: str
    recursive: bool = False
    attr_set: int = 0  # MOUNT_ATTR_*: applied to the clone before it is attached (ro needs no remount)
    attr_clr: int = 0
    propagation: int = 0
    source_in_rootfs: bool = False
    create: Create = None
    optional: bool = False
    origin: str = ""


@dataclass(frozen=True)
class MakeNode:
    """mknod a character device; when mknod is refused (userns), bind the host node instead."""

    target: str
    major: int
    minor: int
    mode: int = 0o666
    origin: str = "lxc.autodev"

    @property
    def host_path(self) -> str:
        return "/" + self.target


@dataclass(frozen=True)
class Symlink:
    target: str
    points_to: str
    origin: str = "lxc.autodev"


@dataclass(frozen=True)
class ConsoleBind:
    """Bind the console's host pty slave (known only at apply time) onto `target`."""

    target: str = "dev/console"
    origin: str = "lxc.console"


@dataclass(frozen=True)
class TtyBind:
    """Bind host pty slave number `index` (1-based, lxc.tty.max) onto `target`."""

    index: int
    target: str
    origin: str = "lxc.tty.max"


@dataclass(frozen=True)
class ReadOnlyPath:
    """Make `target` read-only (bind onto itself first unless it already is a mount root). Missing: skipped."""

    target: str
    recursive: bool = True
    origin: str = ""


@dataclass(frozen=True)
class MaskPath:
    """Hide `target`: /dev/null over a file, an empty read-only tmpfs over a directory. Missing: skipped."""

    target: str
    origin: str = ""


@dataclass(frozen=True)
class RootAttributes:
    """lxc.rootfs.options flags (ro, nosuid...) set on / after pivot_root, once all mount points exist."""

    attr_set: int
    attr_clr: int = 0
    origin: str = "lxc.rootfs.options"


RootOperation = Union[RootfsBind, RootfsOverlay]
Operation = Union[RootfsBind, RootfsOverlay, MountFs, BindMount, MakeNode, Symlink, ConsoleBind, TtyBind,
                  ReadOnlyPath, MaskPath, RootAttributes]


@dataclass(frozen=True)
class RootfsPlan:
    """Ordered mount operations; the first sets up the root, a RootAttributes (if any) runs after pivot."""

    container_name: str
    operations: tuple[Operation, ...]

    @property
    def root(self) -> RootOperation:
        first = self.operations[0]
        assert isinstance(first, (RootfsBind, RootfsOverlay))
        return first

    def of_type(self, kind: type) -> list[Operation]:
        return [op for op in self.operations if isinstance(op, kind)]


# ---------------------------------------------------------------------------------------------
# Config parsing helpers
# ---------------------------------------------------------------------------------------------

def _single(values: Mapping[str, str | list[str]], key: str) -> str | None:
    value = values.get(key)
    if isinstance(value, list):
        value = value[-1] if value else None
    return None if value is None else value.strip()


def _multi(values: Mapping[str, str | list[str]], key: str) -> list[str]:
    return [line.strip() for line in config_lines(values.get(key)) if line.strip()]


def _int(values: Mapping[str, str | list[str]], key: str, default: int) -> int:
    raw = _single(values, key)
    if raw is None or raw == "":
        return default
    try:
        number = int(raw, 10)
    except ValueError:
        raise ConfigError(f"{key}: '{raw}' is not a number") from None
    if number < 0:
        raise ConfigError(f"{key}: '{raw}' must not be negative")
    return number


def _inner(path: str, rootfs_path: str) -> str:
    """A target as a path relative to the rootfs; absolute paths under the rootfs lose that prefix (as LXC)."""
    prefix = rootfs_path.rstrip("/") + "/"
    if path.rstrip("/") == prefix.rstrip("/"):
        return "."
    if path.startswith(prefix):
        path = path[len(prefix):]
    return os.path.normpath(path.lstrip("/")) if path.strip("/") else "."


# ---------------------------------------------------------------------------------------------
# lxc.rootfs.path / lxc.rootfs.options
# ---------------------------------------------------------------------------------------------

_ROOT_ATTRS = {
    "ro": (k.MOUNT_ATTR_RDONLY, 0), "rw": (0, k.MOUNT_ATTR_RDONLY),
    "nosuid": (k.MOUNT_ATTR_NOSUID, 0), "suid": (0, k.MOUNT_ATTR_NOSUID),
    "nodev": (k.MOUNT_ATTR_NODEV, 0), "dev": (0, k.MOUNT_ATTR_NODEV),
    "noexec": (k.MOUNT_ATTR_NOEXEC, 0), "exec": (0, k.MOUNT_ATTR_NOEXEC),
    "nosymfollow": (k.MOUNT_ATTR_NOSYMFOLLOW, 0),
    "noatime": (k.MOUNT_ATTR_NOATIME, k.MOUNT_ATTR__ATIME),
    "strictatime": (k.MOUNT_ATTR_STRICTATIME, k.MOUNT_ATTR__ATIME),
    "relatime": (k.MOUNT_ATTR_RELATIME, k.MOUNT_ATTR__ATIME),
    "nodiratime": (k.MOUNT_ATTR_NODIRATIME, 0),
    "defaults": (0, 0),
}
_DIR_LIKE = ("dir", "btrfs")  # a btrfs subvolume is a plain directory to bind
_UNSUPPORTED_STORAGE = ("zfs", "lvm", "loop", "nbd", "rbd")


def _plan_root(values: Mapping[str, str | list[str]], rootfs: str) -> tuple[RootOperation, RootAttributes | None]:
    spec = _single(values, "lxc.rootfs.path") or rootfs
    options = [o.strip() for o in (_single(values, "lxc.rootfs.options") or "").split(",") if o.strip()]
    attr_set = attr_clr = 0
    extra: list[str] = []
    for option in options:
        if option.startswith("idmap="):
            raise ConfigError(f"lxc.rootfs.options: '{option}': idmapped rootfs mounts are not supported")
        if option in _ROOT_ATTRS:
            set_, clr = _ROOT_ATTRS[option]
            attr_set = (attr_set & ~clr) | set_
            if clr == k.MOUNT_ATTR__ATIME:  # the kernel wants the atime field cleared to change it
                attr_clr |= clr
        else:
            extra.append(option)
    attrs = RootAttributes(attr_set, attr_clr) if attr_set or attr_clr else None

    kind, _, rest = spec.partition(":") if not spec.startswith("/") else ("dir", "", spec)
    if kind in ("overlay", "overlayfs"):
        parts = [p for p in rest.split(":") if p]
        if len(parts) < 2 or not all(p.startswith("/") for p in parts):
            raise ConfigError(f"lxc.rootfs.path '{spec}': expected overlay:/lower[:/lower2...]:/upper")
        upper = parts[-1].rstrip("/")
        mountpoint = _single(values, "lxc.rootfs.mount") or rootfs
        # LXC keeps the overlay workdir beside the upper dir, named olwork.
        workdir = os.path.join(os.path.dirname(upper), "olwork")
        return RootfsOverlay(tuple(parts[:-1]), upper, workdir, mountpoint, ",".join(extra)), attrs
    if extra:
        raise ConfigError(f"lxc.rootfs.options '{','.join(extra)}': not a mount flag a directory rootfs accepts")
    if kind in _DIR_LIKE:
        if not rest.startswith("/"):
            raise ConfigError(f"lxc.rootfs.path '{spec}': the rootfs path must be absolute")
        return RootfsBind(os.path.normpath(rest)), attrs
    if kind in _UNSUPPORTED_STORAGE:
        raise ConfigError(f"lxc.rootfs.path '{spec}': storage type '{kind}' is not supported by pyl")
    raise ConfigError(f"lxc.rootfs.path '{spec}': the rootfs path must be absolute or TYPE:PATH")


# ---------------------------------------------------------------------------------------------
# lxc.mount.auto
# ---------------------------------------------------------------------------------------------

_PROC_READONLY = ("proc/sys", "proc/sysrq-trigger", "proc/irq", "proc/bus", "proc/fs")
_PROC_MASKED = ("proc/kcore", "proc/keys", "proc/timer_list", "proc/sched_debug", "proc/latency_stats",
                "proc/timer_stats", "proc/acpi", "proc/scsi", "proc/asound")
_SYS_MASKED = ("sys/firmware", "sys/devices/virtual/powercap")
_FS_FLAGS = MS_NOSUID | MS_NODEV | MS_NOEXEC


@dataclass(frozen=True)
class _Auto:
    proc: str | None = None     # "mixed" | "rw"
    sys: str | None = None      # "mixed" | "ro" | "rw"
    cgroup: str | None = None   # "mixed" | "ro" | "rw"  (v1-style layout, or v2 on a pure-v2 host)
    cgroup2: str | None = None  # "rw" | "ro"            (cgroup2 directly at /sys/fs/cgroup)


def _parse_auto(values: Mapping[str, str | list[str]]) -> _Auto:
    proc = sys = cgroup = cgroup2 = None
    for token in " ".join(_multi(values, "lxc.mount.auto")).split():
        base, *mods = token.split(":")
        bad = ConfigError(f"lxc.mount.auto: unknown value '{token}'")
        if base == "proc":
            if mods not in ([], ["mixed"], ["rw"]):
                raise bad
            proc = mods[0] if mods else "mixed"
        elif base == "sys":
            if mods not in ([], ["mixed"], ["ro"], ["rw"]):
                raise bad
            sys = mods[0] if mods else "mixed"
        elif base in ("cgroup", "cgroup-full"):
            # A cgroup namespace is always used, so ":force" changes nothing, and cgroup-full (bind the
            # host hierarchies) shows the same namespace root as cgroup. Bare "cgroup" is mixed: pyl
            # does not know here whether CAP_SYS_ADMIN is kept.
            modes = [m for m in mods if m != "force"]
            if len(modes) > 1 or any(m not in ("mixed", "ro", "rw") for m in modes) or mods.count("force") > 1:
                raise bad
            cgroup = modes[0] if modes else "mixed"
        elif base == "cgroup2":
            if mods not in ([], ["ro"], ["force"], ["ro", "force"]):
                raise bad
            cgroup2 = "ro" if "ro" in mods else "rw"
        elif base == "shmounts":
            raise ConfigError(f"lxc.mount.auto: '{token}': shmounts is not supported by pyl")
        else:
            raise bad
    return _Auto(proc, sys, cgroup, cgroup2)


def _plan_proc(mode: str) -> list[Operation]:
    origin = f"lxc.mount.auto proc:{mode}"
    ops: list[Operation] = [MountFs("proc", "proc", "proc", _FS_FLAGS, origin=origin)]
    return ops


def _plan_sys(mode: str) -> list[Operation]:
    origin = f"lxc.mount.auto sys:{mode}"
    if mode == "ro":
        return [MountFs("sysfs", "sysfs", "sys", _FS_FLAGS | MS_RDONLY, origin=origin)]
    ops: list[Operation] = [MountFs("sysfs", "sysfs", "sys", _FS_FLAGS, origin=origin)]
    if mode == "mixed":
        # LXC's mixed: sysfs read-only except the container's own network devices.
        ops.append(BindMount("sys/devices/virtual/net", "sys/devices/virtual/net", source_in_rootfs=True,
                             optional=True, origin=origin))
        ops.append(ReadOnlyPath("sys", recursive=False, origin=origin))
    return ops


def _v1_data(options: str) -> str:
    # Only controller names and name=: never copy release_agent= (it would set the host's agent).
    keep = [o for o in options.split(",") if o and o not in ("rw", "ro") and ("=" not in o or o.startswith("name="))]
    return ",".join(keep)


def _plan_cgroup(auto: _Auto, layout: CgroupLayout) -> list[Operation]:
    ops: list[Operation] = []
    base = "sys/fs/cgroup"
    if auto.cgroup is not None:
        mode, origin = auto.cgroup, f"lxc.mount.auto cgroup:{auto.cgroup}"
        flags = _FS_FLAGS | (0 if mode == "rw" else MS_RDONLY)
        pure_v2 = [entry for entry in layout if entry[0] == "" and entry[1] == "cgroup2"]
        if pure_v2 or not layout:
            return [MountFs("cgroup2", "cgroup2", base, flags, origin=origin)]
        ops.append(MountFs("tmpfs", "cgroup", base, _FS_FLAGS, "size=10240,mode=755", origin=origin))
        for name, fstype, options in layout:
            if not name or "/" in name or name in (".", ".."):
                continue
            target = f"{base}/{name}"
            if fstype == "cgroup":
                ops.append(MountFs("cgroup", "cgroup", target, flags, _v1_data(options), origin=origin))
            elif fstype == "cgroup2":
                ops.append(MountFs("cgroup2", "cgroup2", target, flags, origin=origin))
        # The tmpfs only holds mount points; nothing inside should create more.
        ops.append(ReadOnlyPath(base, recursive=False, origin=origin))
    elif auto.cgroup2 is not None:
        flags = _FS_FLAGS | (MS_RDONLY if auto.cgroup2 == "ro" else 0)
        ops.append(MountFs("cgroup2", "cgroup2", base, flags, origin=f"lxc.mount.auto cgroup2:{auto.cgroup2}"))
    return ops


def host_cgroup_layout(mountinfo: str = "/proc/self/mountinfo", root: str = DEFAULT_CGROUP_ROOT) -> list[tuple[str, str, str]]:
    """The host's cgroup mounts under `root` as (name, fstype, super options); name '' is `root` itself."""
    layout: list[tuple[str, str, str]] = []
    with open(mountinfo, encoding="utf-8") as handle:
        for line in handle:
            head, _, tail = line.partition(" - ")
            fields, rest = head.split(), tail.split()
            if len(fields) < 5 or len(rest) < 3 or rest[0] not in ("cgroup", "cgroup2"):
                continue
            point = _unescape(fields[4])
            if point == root:
                layout.append(("", rest[0], rest[2]))
            elif point.startswith(root.rstrip("/") + "/"):
                layout.append((point[len(root.rstrip("/")) + 1:], rest[0], rest[2]))
    return layout


# ---------------------------------------------------------------------------------------------
# lxc.mount.entry / lxc.mount.fstab
# ---------------------------------------------------------------------------------------------

# option -> (flags to set, flags to clear)
_MS_OPTIONS: dict[str, tuple[int, int]] = {
    "defaults": (0, 0), "ro": (MS_RDONLY, 0), "rw": (0, MS_RDONLY),
    "nosuid": (MS_NOSUID, 0), "suid": (0, MS_NOSUID), "nodev": (MS_NODEV, 0), "dev": (0, MS_NODEV),
    "noexec": (MS_NOEXEC, 0), "exec": (0, MS_NOEXEC), "sync": (MS_SYNCHRONOUS, 0), "async": (0, MS_SYNCHRONOUS),
    "dirsync": (MS_DIRSYNC, 0), "mand": (MS_MANDLOCK, 0), "nomand": (0, MS_MANDLOCK),
    "noatime": (MS_NOATIME, 0), "atime": (0, MS_NOATIME), "nodiratime": (MS_NODIRATIME, 0),
    "diratime": (0, MS_NODIRATIME), "relatime": (MS_RELATIME, 0), "norelatime": (0, MS_RELATIME),
    "strictatime": (MS_STRICTATIME, 0), "nostrictatime": (0, MS_STRICTATIME),
    "lazytime": (MS_LAZYTIME, 0), "nolazytime": (0, MS_LAZYTIME), "silent": (MS_SILENT, 0), "loud": (0, MS_SILENT),
    "nosymfollow": (MS_NOSYMFOLLOW, 0), "bind": (MS_BIND, 0), "rbind": (MS_BIND | MS_REC, 0),
    # fstab-only words mount(8) consumes; meaningless here.
    "auto": (0, 0), "noauto": (0, 0), "user": (0, 0), "nouser": (0, 0), "users": (0, 0),
}
_PROPAGATION: dict[str, int] = {
    "shared": MS_SHARED, "rshared": MS_SHARED | MS_REC, "slave": MS_SLAVE, "rslave": MS_SLAVE | MS_REC,
    "private": MS_PRIVATE, "rprivate": MS_PRIVATE | MS_REC,
    "unbindable": MS_UNBINDABLE, "runbindable": MS_UNBINDABLE | MS_REC,
}
# Per-mount flags a bind clone carries as MOUNT_ATTR_* (set before attach: no ro-remount window).
_BIND_ATTRS: dict[int, int] = {
    MS_RDONLY: k.MOUNT_ATTR_RDONLY, MS_NOSUID: k.MOUNT_ATTR_NOSUID, MS_NODEV: k.MOUNT_ATTR_NODEV,
    MS_NOEXEC: k.MOUNT_ATTR_NOEXEC, MS_NOSYMFOLLOW: k.MOUNT_ATTR_NOSYMFOLLOW, MS_NODIRATIME: k.MOUNT_ATTR_NODIRATIME,
}
_BIND_ATIME: dict[int, int] = {
    MS_NOATIME: k.MOUNT_ATTR_NOATIME, MS_STRICTATIME: k.MOUNT_ATTR_STRICTATIME, MS_RELATIME: k.MOUNT_ATTR_RELATIME,
}


def _unescape(field: str) -> str:
    """fstab/mountinfo octal escapes: \\040 is a space."""
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and i + 3 < len(field) and field[i + 1:i + 4].isdigit():
            out.append(chr(int(field[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def parse_mount_entry(line: str, *, rootfs_path: str, key: str = "lxc.mount.entry",
                      where: str = "") -> MountFs | BindMount:
    """One fstab-format line -> a mount operation. ConfigError names the key and the line."""
    label = f"{key}{' ' + where if where else ''} '{line}'"

    def bad(why: str) -> ConfigError:
        return ConfigError(f"{label}: {why}")

    fields = [_unescape(f) for f in line.split()]
    if len(fields) < 3 or len(fields) > 6:
        raise bad("expected 'SOURCE TARGET FSTYPE [OPTIONS [DUMP [PASS]]]'")
    source, target, fstype = fields[0], fields[1], fields[2]
    options = fields[3] if len(fields) > 3 else "defaults"
    if any(not f.isdigit() for f in fields[4:]):
        raise bad("dump and pass fields must be numbers")

    flags = clear = propagation = 0
    create: Create = None
    optional = relative = False
    data: list[str] = []
    for option in (o for o in options.split(",") if o):
        if option in _MS_OPTIONS:
            set_, clr = _MS_OPTIONS[option]
            flags, clear = (flags | set_) & ~clr, (clear | clr) & ~set_
        elif option in _PROPAGATION:
            propagation = _PROPAGATION[option]
        elif option in ("optional", "nofail"):
            optional = True
        elif option == "relative":
            relative = True
        elif option.startswith("create="):
            value = option.partition("=")[2]
            if value not in ("dir", "file"):
                raise bad(f"create= must be dir or file, not '{value}'")
            create = value  # type: ignore[assignment]
        elif option.startswith("idmap="):
            raise bad("idmapped mount entries are not supported")
        elif option == "remount":
            raise bad("remount is not allowed in a mount entry")
        else:
            data.append(option)

    inner_target = _inner(target, rootfs_path)
    if inner_target in (".", ".."):
        raise bad("cannot mount over the rootfs itself")
    origin = f"mount entry '{line}'"
    if flags & MS_BIND:
        if relative:
            source = _inner(source, rootfs_path)
        elif not source.startswith("/"):
            raise bad("a bind source must be absolute (or use the relative option)")
        attr_set = attr_clr = 0
        for ms, attr in _BIND_ATTRS.items():
            if flags & ms:
                attr_set |= attr
        for ms, attr in _BIND_ATIME.items():
            if flags & ms:
                attr_set, attr_clr = attr_set | attr, attr_clr | k.MOUNT_ATTR__ATIME
        return BindMount(source, inner_target, recursive=bool(flags & MS_REC), attr_set=attr_set,
                         attr_clr=attr_clr, propagation=propagation, source_in_rootfs=relative,
                         create=create, optional=optional, origin=origin)
    if relative:
        raise bad("the relative option only applies to bind mounts")
    if fstype in ("none", ""):
        raise bad("fstype 'none' needs the bind or rbind option")
    # No create= means the target must exist, as in LXC.
    return MountFs(fstype, source, inner_target, flags, ",".join(data), propagation=propagation,
                   create=create, optional=optional, origin=origin)


def _plan_entries(values: Mapping[str, str | list[str]], rootfs_path: str) -> list[Operation]:
    ops: list[Operation] = []
    fstab = _single(values, "lxc.mount.fstab")
    if fstab:
        if not fstab.startswith("/"):
            raise ConfigError(f"lxc.mount.fstab '{fstab}': the path must be absolute")
        try:
            with open(fstab, encoding="utf-8") as handle:
                lines = handle.read().splitlines()
        except OSError as exc:
            raise ConfigError(f"lxc.mount.fstab '{fstab}': {exc.strerror}") from exc
        for number, raw in enumerate(lines, 1):
            if raw.strip() and not raw.lstrip().startswith("#"):
                ops.append(parse_mount_entry(raw.strip(), rootfs_path=rootfs_path, key="lxc.mount.fstab",
                                             where=f"{fstab}:{number}"))
    for line in _multi(values, "lxc.mount.entry"):
        ops.append(parse_mount_entry(line, rootfs_path=rootfs_path))
    return ops


# ---------------------------------------------------------------------------------------------
# lxc.autodev, console and ttys
# ---------------------------------------------------------------------------------------------

_DEV_NODES = (("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8), ("urandom", 1, 9), ("tty", 5, 0))


def _plan_dev_mount(values: Mapping[str, str | list[str]]) -> MountFs:
    size = _int(values, "lxc.autodev.tmpfs.size", DEFAULT_AUTODEV_TMPFS_SIZE)
    return MountFs("tmpfs", "none", "dev", MS_NOSUID, f"size={size},mode=755", origin="lxc.autodev")


def _plan_dev_contents(values: Mapping[str, str | list[str]]) -> list[Operation]:
    ops: list[Operation] = [MakeNode(f"dev/{name}", major, minor) for name, major, minor in _DEV_NODES]
    pty_max = _int(values, "lxc.pty.max", 0)
    base = "newinstance,ptmxmode=0666,mode=0620"
    limit = f",max={pty_max}" if pty_max else ""
    ops.append(MountFs("devpts", "devpts", "dev/pts", MS_NOSUID | MS_NOEXEC, f"{base},gid=5{limit}",
                       fallback_data=(f"{base}{limit}",), origin="lxc.autodev devpts"))
    ops.append(Symlink("dev/ptmx", "pts/ptmx"))
    ops.append(MountFs("tmpfs", "shm", "dev/shm", MS_NOSUID | MS_NODEV, "mode=1777", origin="lxc.autodev"))
    # mqueue needs an IPC namespace to be private; without one it still mounts (host queues), so optional.
    ops.append(MountFs("mqueue", "mqueue", "dev/mqueue", _FS_FLAGS, optional=True, origin="lxc.autodev"))
    ops.append(Symlink("dev/fd", "/proc/self/fd"))
    for number, name in enumerate(("stdin", "stdout", "stderr")):
        ops.append(Symlink(f"dev/{name}", f"/proc/self/fd/{number}"))
    return ops


def _plan_ttys(values: Mapping[str, str | list[str]], tty_count: int) -> list[Operation]:
    tty_dir = _single(values, "lxc.tty.dir") or ""
    if tty_dir and ("/" in tty_dir or tty_dir in (".", "..")):
        raise ConfigError(f"lxc.tty.dir '{tty_dir}': must be a plain directory name under /dev")
    ops: list[Operation] = []
    if tty_dir:
        ops.append(ConsoleBind(f"dev/{tty_dir}/console"))
    ops.append(ConsoleBind("dev/console"))
    for index in range(1, tty_count + 1):
        if tty_dir:
            ops.append(TtyBind(index, f"dev/{tty_dir}/tty{index}"))
            ops.append(Symlink(f"dev/tty{index}", f"{tty_dir}/tty{index}", origin="lxc.tty.dir"))
        else:
            ops.append(TtyBind(index, f"dev/tty{index}"))
    return ops


# ---------------------------------------------------------------------------------------------
# The plan
# ---------------------------------------------------------------------------------------------

def plan_rootfs(values: Mapping[str, str | list[str]], *, rootfs: str, tty_count: int, container_name: str,
                cgroup_layout: CgroupLayout | None = None) -> RootfsPlan:
    """Build the mount plan. `rootfs` is the default rootfs directory (LXCPATH/NAME/rootfs): used when
    lxc.rootfs.path is unset and as the overlay mount point unless lxc.rootfs.mount names one.
    `cgroup_layout` is the host's cgroup mounts (see host_cgroup_layout); None reads the host's,
    only if a cgroup automount is asked for. lxc.mount.fstab is read here."""
    root, root_attrs = _plan_root(values, rootfs)
    auto = _parse_auto(values)
    autodev_raw = _single(values, "lxc.autodev") or "1"
    if autodev_raw not in ("0", "1"):
        raise ConfigError(f"lxc.autodev: '{autodev_raw}' must be 0 or 1")
    if tty_count < 0:
        raise ConfigError(f"lxc.tty.max: '{tty_count}' must not be negative")

    ops: list[Operation] = [root]
    # Order follows LXC: auto mounts, /dev tmpfs, fstab and entries (so they may bind into /dev),
    # then /dev contents, console and ttys; masks last, so no entry can mount over them.
    if auto.proc:
        ops += _plan_proc(auto.proc)
    if auto.sys:
        ops += _plan_sys(auto.sys)
    if auto.cgroup or auto.cgroup2:
        layout = cgroup_layout if cgroup_layout is not None else host_cgroup_layout()
        ops += _plan_cgroup(auto, layout)
    autodev = autodev_raw == "1"
    if autodev:
        ops.append(_plan_dev_mount(values))
    ops += _plan_entries(values, root.path)
    if autodev:
        ops += _plan_dev_contents(values)
    ops += _plan_ttys(values, tty_count)
    if auto.proc == "mixed":
        origin = "lxc.mount.auto proc:mixed"
        ops += [ReadOnlyPath(p, origin=origin) for p in _PROC_READONLY]
        ops += [MaskPath(p, origin=origin) for p in _PROC_MASKED]
    if auto.sys in ("mixed", "ro"):
        ops += [MaskPath(p, origin=f"lxc.mount.auto sys:{auto.sys}") for p in _SYS_MASKED]
    if root_attrs is not None:
        ops.append(root_attrs)
    return RootfsPlan(container_name, tuple(ops))
