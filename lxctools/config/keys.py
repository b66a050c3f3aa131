"""The one table of configuration keys (LXC's confile.c jump table, as data).

Every container config key pyl understands is a KeySpec here: its name (or pattern),
whether it accumulates values, its validator, default, one-line help, completion values
and TOML scalar kind. Parsing, validation, `pyl-config -l`, shell completion, the key
docs and the tests all read this table; nothing else lists keys.

Three shapes of key:
- exact names (`lxc.uts.name`);
- network keys `lxc.net.<N>.<sub>` for any integer N (one NET_KEYS entry per sub-key);
- prefix patterns (`lxc.cgroup.<controller.file>`, `lxc.prlimit.<resource>`, ...).
A *group clear* key (`lxc.net`, `lxc.net.<N>`, `lxc.cgroup`, `lxc.hook`, ...) takes only an
empty value, which removes every key below it.

The system config keys (pyl.toml) are a separate small table, SYSTEM_KEYS.
"""

from __future__ import annotations

from lxctools.config import validators as v
from lxctools.errors import ConfigError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable


class KeySpec:
    """One key (or key pattern) of the table. Immutable by convention (slots, no setters)."""

    __slots__ = ("name", "multi", "validate", "default", "help", "completions", "kind",
                 "group_clear")

    def __init__(self, name: str, validate: Callable[[str], None], help: str, *,
                 multi: bool = False, default: str | None = None, kind: str = "str",
                 completions: tuple[str, ...] = (), group_clear: bool = False) -> None:
        self.name = name                  # exact key, or pattern with a <placeholder>
        self.validate = validate          # raises ValueError(message) for a bad non-empty value
        self.help = help
        self.multi = multi                # values accumulate, one per line; "" clears
        self.default = default            # LXC's default when unset (documentation only)
        self.kind = kind                  # "str" | "int" | "bool": how TOML writes the value
        self.completions = completions    # values offered by shell completion
        self.group_clear = group_clear    # only "" allowed; clears every key below name

    def __repr__(self) -> str:
        return f"KeySpec({self.name!r})"


def _k(name: str, validate, help: str, **kw) -> KeySpec:
    return KeySpec(name, validate, help, **kw)


def _bool(name: str, help: str, default: str | None = "0") -> KeySpec:
    return KeySpec(name, v.boolean, help, default=default, kind="bool", completions=("0", "1"))


def _uint(name: str, help: str, default: str | None = None, hi: int | None = None) -> KeySpec:
    return KeySpec(name, v.integer(0, hi), help, default=default, kind="int")


def _clear(name: str, help: str) -> KeySpec:
    return KeySpec(name, _only_empty, help, group_clear=True)


def _only_empty(value: str) -> None:
    raise ValueError("only an empty value is allowed here (it clears every key below)")


_SIG = v.SIGNAL_COMPLETIONS

KEYS: tuple[KeySpec, ...] = (
    # --- identity, rootfs, mounts ---
    _k("lxc.uts.name", v.hostname, "host name of the container"),
    _k("lxc.arch", v.arch, "personality (architecture) of the container", completions=v.ARCHES),
    _k("lxc.rootfs.path", v.any_value, "root filesystem: path or TYPE:spec (dir:, overlay:, btrfs:, zfs:, lvm:, loop:, nbd:, rbd:)"),
    _k("lxc.rootfs.options", v.any_value, "extra mount options for the rootfs (idmap=container|PATH)"),
    _k("lxc.rootfs.mount", v.any_value, "host staging mount point of the rootfs before pivot_root"),
    _bool("lxc.rootfs.managed", "0 = pyl must not touch or destroy the storage", default="1"),
    _k("lxc.mount.fstab", v.any_value, "fstab-format file of extra mounts (targets relative to the rootfs)"),
    _k("lxc.mount.entry", v.mount_entry, "one fstab line (options optional, create=dir|file, relative)", multi=True),
    _k("lxc.mount.auto", v.mount_auto, "space-separated automatic mounts (proc, sys, cgroup, ...); later tokens of one kind win",
       multi=True, completions=v.MOUNT_AUTO + ("shmounts:",)),
    _bool("lxc.autodev", "1 = mount a tmpfs on /dev and create the basic device nodes", default="1"),
    _uint("lxc.autodev.tmpfs.size", "size of the /dev tmpfs in bytes", default="500000"),
    # --- terminals ---
    _uint("lxc.tty.max", "number of /dev/ttyN ptys for pyl-console", default="0"),
    _k("lxc.tty.dir", v.any_value, "put console and tty nodes under /dev/DIR and symlink them"),
    _uint("lxc.pty.max", "maximum ptys of the container's private devpts", default="0"),
    _k("lxc.console.path", v.any_value, "console device; 'none' disables the console", completions=("none",)),
    _k("lxc.console.logfile", v.any_value, "file the console output is logged to"),
    _bool("lxc.console.rotate", "1 = rotate the console log file"),
    _k("lxc.console.size", v.byte_size(True), "console log size limit (auto = 128KiB)", completions=("auto",)),
    _k("lxc.console.buffer.size", v.byte_size(True), "in-memory console ring buffer size (auto = 128KiB)", completions=("auto",)),
    # --- init, environment, lifecycle ---
    _k("lxc.init.cmd", v.any_value, "command run as PID 1 by pyl-start", default="/sbin/init"),
    _k("lxc.execute.cmd", v.any_value, "default command of pyl-execute"),
    _k("lxc.init.cwd", v.any_value, "working directory of init", default="/"),
    # (uid_t)-1 means "unchanged" to the kernel: the largest usable id is one below it
    _uint("lxc.init.uid", "uid of init and attached processes", default="0", hi=2**32 - 2),
    _uint("lxc.init.gid", "gid of init and attached processes", default="0", hi=2**32 - 2),
    _k("lxc.init.groups", v.gid_list, "comma-separated supplementary group ids of init", multi=True),
    _k("lxc.environment", v.environment, "VAR=VALUE (or bare VAR: inherit) for init and attach", multi=True),
    _k("lxc.signal.halt", v.signal_value(), "signal that halts the container", default="SIGPWR", completions=_SIG),
    _k("lxc.signal.reboot", v.signal_value(), "signal that reboots the container", default="SIGINT", completions=_SIG),
    _k("lxc.signal.stop", v.signal_value(), "signal that kills the container", default="SIGKILL", completions=_SIG),
    _bool("lxc.ephemeral", "1 = destroy the container when it stops"),
    _bool("lxc.no_new_privs", "1 = set PR_SET_NO_NEW_PRIVS before init"),
    _k("lxc.monitor.unshare", v.boolean, "1 = the monitor unshares its mount namespace before hooks", default="0", kind="bool", completions=("0", "1")),
    _k("lxc.monitor.signal.pdeath", v.signal_value(allow_zero=True), "signal sent to init if the monitor dies (0 = none)", default="SIGKILL", completions=("0",) + _SIG),
    _bool("lxc.keyring.session", "0 = inherit the session keyring instead of a new one", default="1"),
    _bool("lxc.sched.core", "1 = own core-scheduling domain", default=None),
    # --- security ---
    _k("lxc.cap.drop", v.capabilities(False), "space-separated capabilities to drop (no CAP_, lower case)",
       multi=True, completions=v.CAPABILITIES),
    _k("lxc.cap.keep", v.capabilities(True), "space-separated capabilities to keep, all others dropped; 'none' clears earlier values (alone: keep none)",
       multi=True, completions=("none",) + v.CAPABILITIES),
    _k("lxc.idmap", v.idmap, "u|g NSID HOSTID RANGE; any idmap makes the container unprivileged", multi=True),
    _k("lxc.namespace.clone", v.words(*v.NAMESPACES), "namespaces to create", multi=True, completions=v.NAMESPACES),
    _k("lxc.namespace.keep", v.words(*v.NAMESPACES), "namespaces inherited from the caller", multi=True, completions=v.NAMESPACES),
    _k("lxc.time.offset.boot", v.time_offset, "boot-time clock offset of the time namespace (e.g. -5s)"),
    _k("lxc.time.offset.monotonic", v.time_offset, "monotonic clock offset of the time namespace"),
    _k("lxc.apparmor.profile", v.any_value, "AppArmor profile (unconfined, unchanged, generated, or a name)",
       completions=("unconfined", "unchanged", "generated")),
    _bool("lxc.apparmor.allow_incomplete", "1 = start even if AppArmor support is incomplete"),
    _bool("lxc.apparmor.allow_nesting", "1 = allow nesting in the generated profile"),
    _k("lxc.apparmor.raw", v.any_value, "raw lines appended to the generated profile", multi=True),
    _k("lxc.selinux.context", v.any_value, "SELinux context of init"),
    _k("lxc.selinux.context.keyring", v.any_value, "SELinux context of the session keyring"),
    _k("lxc.seccomp.profile", v.any_value, "seccomp policy file"),
    _bool("lxc.seccomp.allow_nesting", "1 = allow stacking seccomp filters"),
    _k("lxc.seccomp.notify.proxy", v.notify_proxy, "seccomp notify proxy socket (unix:/path or unix:@abstract)"),
    _k("lxc.seccomp.notify.cookie", v.any_value, "cookie sent to the seccomp notify proxy"),
    # --- logging, autostart ---
    _k("lxc.log.level", v.log_level, "log priority 0 (trace) .. 8 (fatal), or its name", default="5",
       kind="int", completions=v.LOG_LEVELS),
    _k("lxc.log.file", v.any_value, "log file"),
    _k("lxc.log.syslog", v.syslog_facility, "syslog facility for the log", completions=v.SYSLOG_FACILITIES),
    _bool("lxc.start.auto", "1 = start with pyl-autostart"),
    _uint("lxc.start.delay", "seconds to wait after autostarting this container", default="0"),
    _k("lxc.start.order", v.integer(), "autostart sort key (lower first)", default="0", kind="int"),
    _k("lxc.group", v.no_space, "autostart group membership", multi=True, completions=("onboot",)),
    # --- cgroups (exact names win over the lxc.cgroup.<file> pattern) ---
    _k("lxc.cgroup.dir", v.any_value, "cgroup path of the container, below the caller's cgroup"),
    _k("lxc.cgroup.dir.container", v.any_value, "cgroup path of the container payload (with dir.monitor)"),
    _k("lxc.cgroup.dir.container.inner", v.any_value, "inner cgroup the payload is moved to"),
    _k("lxc.cgroup.dir.monitor", v.any_value, "cgroup path of the monitor (with dir.container)"),
    _k("lxc.cgroup.dir.monitor.pivot", v.any_value, "cgroup the monitor moves to before removing its own"),
    _bool("lxc.cgroup.relative", "1 = never escape to the root cgroup"),
    _k("lxc.cgroup.devices.allow", v.device_rule, "cgroup v1 device rule to allow (TYPE MAJ:MIN ACCESS)", multi=True, completions=("a",)),
    _k("lxc.cgroup.devices.deny", v.device_rule, "cgroup v1 device rule to deny ('a' = allow-list mode)", multi=True, completions=("a",)),
    _k("lxc.cgroup2.devices.allow", v.device_rule, "cgroup2 device rule to allow (compiled to BPF)", multi=True, completions=("a",)),
    _k("lxc.cgroup2.devices.deny", v.device_rule, "cgroup2 device rule to deny ('a' = allow-list mode)", multi=True, completions=("a",)),
    # --- hooks ---
    *(_k(f"lxc.hook.{t}", v.any_value, f"command run as the {t} hook", multi=True) for t in v.HOOK_TYPES),
    _k("lxc.hook.version", v.choice("0", "1"), "0 = hook info as arguments, 1 = as environment", default="0",
       kind="int", completions=("0", "1")),
    # --- namespace sharing ---
    *(_k(f"lxc.namespace.share.{ns}", v.any_value, f"join the {ns} namespace of a PID, container name or /path/to/container")
      for ns in v.NAMESPACES),
    # --- includes and group clears ---
    _k("lxc.include", v.any_value, "include a config file, or every *.conf in a directory", multi=True),
    _clear("lxc.net", "empty value: remove every network"),
    _clear("lxc.cgroup", "empty value: remove every lxc.cgroup.* setting"),
    _clear("lxc.cgroup2", "empty value: remove every lxc.cgroup2.* setting"),
    _clear("lxc.hook", "empty value: remove every hook"),
    _clear("lxc.prlimit", "empty value: remove every lxc.prlimit.* setting"),
    _clear("lxc.sysctl", "empty value: remove every lxc.sysctl.* setting"),
    _clear("lxc.proc", "empty value: remove every lxc.proc.* setting"),
)

# Sub-keys of lxc.net.<N>.
NET_KEYS: tuple[KeySpec, ...] = (
    _k("type", v.choice("veth", "macvlan", "ipvlan", "vlan", "phys", "empty", "none"), "network type (should come first)",
       completions=("veth", "macvlan", "ipvlan", "vlan", "phys", "empty", "none")),
    _k("link", v.ifname, "bridge (veth) or parent/physical device on the host"),
    _k("flags", v.choice("up"), "'up' brings the interface up", completions=("up",)),
    _k("name", v.ifname, "interface name inside the container (default eth<N>)"),
    _k("hwaddr", v.hwaddr, "MAC address; each x/X becomes a random hex digit (persisted on save)",
       completions=("00:16:3e:xx:xx:xx",)),
    _uint("mtu", "MTU of the interface", hi=65535),
    _k("ipv4.address", v.ip_address(4), "A.B.C.D/M [BROADCAST], or auto (pyl: an address from the bridge's subnet)",
       multi=True, completions=("auto",)),
    _k("ipv4.gateway", v.ip_gateway(4), "IPv4 gateway address, auto (bridge address) or dev (device route)", completions=("auto", "dev")),
    _k("ipv6.address", v.ip_address(6), "IPv6 ADDRESS/PREFIX, or auto (pyl)", multi=True, completions=("auto",)),
    _k("ipv6.gateway", v.ip_gateway(6), "IPv6 gateway address, auto or dev", completions=("auto", "dev")),
    _k("veth.pair", v.ifname, "host-side veth name (default vethXXXXXX)"),
    _k("veth.mode", v.choice("bridge", "router"), "bridge (default) or router", completions=("bridge", "router")),
    _k("veth.ipv4.route", v.ip_route(4), "host route to the container (router mode)", multi=True),
    _k("veth.ipv6.route", v.ip_route(6), "host IPv6 route to the container", multi=True),
    _k("veth.vlan.id", v.vlan_id(True), "untagged VLAN on the bridge port ('none' removes the default)", completions=("none",)),
    _k("veth.vlan.tagged.id", v.vlan_id(False), "tagged VLAN on the bridge port", multi=True, kind="int"),
    _uint("veth.n_rxqueues", "number of veth rx queues"),
    _uint("veth.n_txqueues", "number of veth tx queues"),
    _k("macvlan.mode", v.choice("private", "vepa", "bridge", "passthru"), "macvlan mode (default private)",
       completions=("private", "vepa", "bridge", "passthru")),
    _k("ipvlan.mode", v.choice("l3", "l3s", "l2"), "ipvlan mode (default l3)", completions=("l3", "l3s", "l2")),
    _k("ipvlan.isolation", v.choice("bridge", "private", "vepa"), "ipvlan isolation (default bridge)",
       completions=("bridge", "private", "vepa")),
    _uint("vlan.id", "VLAN id for type vlan", hi=4094),
    _bool("l2proxy", "1 = add neighbour proxy entries on the link"),
    _k("script.up", v.any_value, "host-side script run after the interface is created"),
    _k("script.down", v.any_value, "host-side script run before the interface is deleted"),
)


class _Pattern:
    """A prefix pattern: lxc.<prefix>.<suffix> where SUFFIX passes suffix_ok."""

    __slots__ = ("prefix", "spec", "suffix_ok", "suffixes")

    def __init__(self, prefix: str, spec: KeySpec, suffix_ok=None, suffixes: tuple[str, ...] = ()) -> None:
        self.prefix = prefix
        self.spec = spec
        self.suffix_ok = suffix_ok
        self.suffixes = suffixes       # suffixes offered by completion


_CGROUP_FILES = ("memory.limit_in_bytes", "memory.max", "memory.high", "cpu.shares", "cpu.max",
                 "cpu.weight", "cpuset.cpus", "cpuset.mems", "pids.max", "blkio.weight", "io.weight")

PATTERNS: tuple[_Pattern, ...] = (
    _Pattern("lxc.cgroup2.", _k("lxc.cgroup2.<controller.file>", v.any_value, "value written to a cgroup2 file of the container"),
             suffixes=_CGROUP_FILES),
    _Pattern("lxc.cgroup.", _k("lxc.cgroup.<controller.file>", v.any_value, "value written to a cgroup v1 file of the container"),
             suffixes=_CGROUP_FILES),
    _Pattern("lxc.prlimit.", _k("lxc.prlimit.<resource>", v.prlimit, "resource limit SOFT[:HARD] (numbers or unlimited)",
                                completions=("unlimited",)),
             suffix_ok=lambda s: s in v.PRLIMITS, suffixes=v.PRLIMITS),
    _Pattern("lxc.sysctl.", _k("lxc.sysctl.<key>", v.any_value, "sysctl set inside the container (e.g. net.ipv4.ip_forward)"),
             suffixes=("net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding", "kernel.domainname")),
    _Pattern("lxc.proc.", _k("lxc.proc.<file>", v.any_value, "value written to /proc/PID/<file> of init (e.g. oom_score_adj)"),
             suffix_ok=lambda s: "/" not in s and s not in (".", ".."), suffixes=("oom_score_adj",)),
)

_NET_CLEAR = _clear("lxc.net.<N>", "empty value: remove network N")

_EXACT: dict[str, KeySpec] = {spec.name: spec for spec in KEYS}
_NET: dict[str, KeySpec] = {spec.name: spec for spec in NET_KEYS}
for _spec in NET_KEYS:
    _spec.name = "lxc.net.<N>." + _spec.name
del _spec


def net_index(key: str) -> tuple[int, str] | None:
    """`lxc.net.3.ipv4.address` -> (3, "ipv4.address"); `lxc.net.3` -> (3, ""); else None."""
    if not key.startswith("lxc.net."):
        return None
    index, _, sub = key[8:].partition(".")
    if not (index.isascii() and index.isdigit()):
        return None
    return int(index), sub


def canonical(key: str) -> str:
    """KEY with its network index normalised (lxc.net.01.type -> lxc.net.1.type, as LXC parses it)."""
    net = net_index(key)
    if net is None or key[8:].split(".", 1)[0] == str(net[0]):
        return key
    return f"lxc.net.{net[0]}" + (f".{net[1]}" if net[1] else "")


def find(key: str) -> KeySpec | None:
    """The spec for KEY, or None if KEY is unknown. Cheap: dict lookups and prefix tests."""
    spec = _EXACT.get(key)
    if spec is not None:
        return spec
    net = net_index(key)
    if net is not None:
        return _NET_CLEAR if net[1] == "" else _NET.get(net[1])
    for pat in PATTERNS:
        if key.startswith(pat.prefix) and len(key) > len(pat.prefix):
            suffix = key[len(pat.prefix):]
            if suffix.startswith(".") or suffix.endswith(".") or ".." in suffix:
                return None
            if pat.suffix_ok is None or pat.suffix_ok(suffix):
                return pat.spec
            return None
    return None


def _candidates(key: str) -> list[str]:
    names = list(_EXACT)
    net = net_index(key)
    index = str(net[0]) if net else "0"
    names += [f"lxc.net.{index}.{sub}" for sub in _NET]
    for pat in PATTERNS:
        names += [pat.prefix + s for s in pat.suffixes]
    return names


def suggest(key: str) -> str | None:
    """The closest known key name to KEY (difflib; imported only on this error path)."""
    import difflib

    close = difflib.get_close_matches(key, _candidates(key), n=1, cutoff=0.6)
    return close[0] if close else None


def unknown_key_message(key: str) -> str:
    hint = suggest(key)
    return f"unknown key '{key}'" + (f" (did you mean '{hint}'?)" if hint else "")


def lookup(key: str) -> KeySpec:
    """The spec for KEY; ConfigError with a did-you-mean suggestion if it is unknown."""
    spec = find(key)
    if spec is None:
        raise ConfigError(unknown_key_message(key))
    return spec


def cleared_by(group: str, key: str) -> bool:
    """Whether an empty GROUP line (a group-clear key) removes KEY."""
    if not key.startswith(group + "."):
        return False
    if group in ("lxc.cgroup", "lxc.cgroup2"):
        # LXC's clear only empties the cgroup settings list, not dir/relative.
        return key not in _EXACT or key.endswith((".devices.allow", ".devices.deny"))
    if group == "lxc.hook":
        return key != "lxc.hook.version"
    return True


def is_multi(key: str) -> bool:
    return lookup(key).multi


def complete_keys(prefix: str) -> list[str]:
    """Key names starting with PREFIX, for argcomplete (patterns expand to common suffixes)."""
    names = set(_candidates(prefix))
    names.update(pat.prefix for pat in PATTERNS)
    net = net_index(prefix)
    if net is None and "lxc.net.".startswith(prefix[:8]):
        names.add("lxc.net.0.")
    return sorted(n for n in names if n.startswith(prefix))


def complete_values(key: str) -> tuple[str, ...]:
    """Values offered for KEY by shell completion (empty if unknown or free-form)."""
    spec = find(key)
    return spec.completions if spec is not None else ()


def all_specs() -> list[KeySpec]:
    """Every spec in table order: exact keys, network sub-keys, patterns."""
    return list(KEYS) + [_NET_CLEAR] + list(NET_KEYS) + [p.spec for p in PATTERNS]


def render_key_docs() -> str:
    """A markdown table of every container key (docs/config-keys.md is generated from it)."""
    rows = ["| Key | Multi | Default | Values | Description |", "|---|---|---|---|---|"]
    for spec in all_specs():
        values = ", ".join(f"`{c}`" for c in spec.completions[:12])
        if len(spec.completions) > 12:
            values += ", …"
        default = f"`{spec.default}`" if spec.default is not None else ""
        text = spec.help.replace("|", "\\|")
        rows.append(f"| `{spec.name}` | {'yes' if spec.multi else ''} | {default} | {values} | {text} |")
    return "\n".join(rows) + "\n"


# --- system config (pyl.toml) --------------------------------------------------------

SYSTEM_KEYS: tuple[KeySpec, ...] = (
    _k("lxc.lxcpath", v.any_value, "container directory (default /var/lib/pyl; user ~/.local/share/pyl; env PYL_LXCPATH)"),
    _k("lxc.default_config", v.any_value, "config used by pyl-create without -f (default /etc/pyl/default.toml)"),
    _k("lxc.default_bridge", v.ifname, "bridge pyl's default network uses (pyl-specific)", default="pylbr0"),
    _k("lxc.rundir", v.any_value, "runtime directory for locks and sockets (default /run/pyl; user $XDG_RUNTIME_DIR/pyl)"),
    _k("lxc.bdev.lvm.vg", v.any_value, "LVM volume group for -B lvm", default="lxc"),
    _k("lxc.bdev.lvm.thin_pool", v.any_value, "LVM thin pool for -B lvm", default="lxc"),
    _k("lxc.bdev.zfs.root", v.any_value, "ZFS root dataset for -B zfs", default="lxc"),
    _k("lxc.bdev.rbd.rbdpool", v.any_value, "RBD pool for -B rbd", default="lxc"),
    _k("lxc.cgroup.use", v.any_value, "comma-separated cgroup controllers to use (unset = all)"),
    _k("lxc.cgroup.pattern", v.any_value, "cgroup naming pattern (%n = container name)"),
)

_SYSTEM: dict[str, KeySpec] = {spec.name: spec for spec in SYSTEM_KEYS}


def lookup_system(key: str) -> KeySpec:
    """The system-config spec for KEY; ConfigError with a suggestion if unknown."""
    spec = _SYSTEM.get(key)
    if spec is None:
        import difflib

        close = difflib.get_close_matches(key, list(_SYSTEM), n=1, cutoff=0.6)
        raise ConfigError(f"unknown system configuration key '{key}'"
                          + (f" (did you mean '{close[0]}'?)" if close else ""))
    return spec
