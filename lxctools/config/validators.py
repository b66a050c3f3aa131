"""Value validators for the config key table (lxctools.config.keys).

Each validator takes the value of one config line (already stripped, never empty: an
empty value means "clear" and is handled by the parser) and raises ValueError with a
short message when LXC would reject it. Every command that writes a config (create, copy,
snapshot, config) runs them, so they use builtins alone: `re` (with `enum`, ~9 ms on a
2-vCPU VM) and `signal` (`enum` again) stay out; `ipaddress` is imported by the address
validators only. tests/unit/test_validators.py holds each hand-written check to the regular
expression it replaces.
"""

from __future__ import annotations

import _signal  # not `signal`: that one imports enum


# --- generic -------------------------------------------------------------------------

def any_value(value: str) -> None:
    """Anything goes (LXC stores the string and interprets it at start)."""


def boolean(value: str) -> None:
    if value not in ("0", "1"):
        raise ValueError("expected 0 or 1")


def is_uint(value: str) -> bool:
    """ASCII digits only (str.isdigit and int() also accept other scripts' digits)."""
    return value.isascii() and value.isdigit()


def integer(lo: int | None = None, hi: int | None = None):
    """An integer in [lo, hi] (bounds optional)."""

    def check(value: str) -> None:
        if not is_uint(value[1:] if value.startswith("-") else value):
            raise ValueError("expected an integer")
        n = int(value, 10)
        if (lo is not None and n < lo) or (hi is not None and n > hi):
            if hi is None:
                raise ValueError(f"expected an integer >= {lo}")
            raise ValueError(f"expected an integer between {lo} and {hi}")

    return check


def choice(*options: str):
    """Exactly one of OPTIONS."""

    def check(value: str) -> None:
        if value not in options:
            raise ValueError("expected one of: " + ", ".join(options))

    return check


def no_space(value: str) -> None:
    if any(c.isspace() for c in value):
        raise ValueError("must not contain whitespace")


def words(*options: str, extra=None):
    """A whitespace-separated list whose tokens are in OPTIONS (or accepted by EXTRA)."""

    def check(value: str) -> None:
        for token in value.split():
            if token in options:
                continue
            if extra is not None and extra(token):
                continue
            raise ValueError(f"unknown token '{token}' (expected: {', '.join(options)})")

    return check


# --- names -----------------------------------------------------------------------------

def ifname(value: str) -> None:
    """A network interface name (IFNAMSIZ is 16 including the NUL)."""
    if len(value) > 15:
        raise ValueError("interface name longer than 15 characters")
    if value in (".", "..") or "/" in value or ":" in value or any(c.isspace() for c in value):
        raise ValueError("invalid interface name")


def hostname(value: str) -> None:
    # The kernel's utsname field holds 64 bytes (__NEW_UTS_LEN).
    if len(value.encode()) > 64:
        raise ValueError("host name longer than 64 bytes")


def environment(value: str) -> None:
    name = value.split("=", 1)[0]
    if not name or any(c.isspace() for c in name):
        raise ValueError("expected VAR=VALUE or VAR")


def gid_list(value: str) -> None:
    """Comma-separated group ids (lxc.init.groups)."""
    for part in value.split(","):
        if not is_uint(part.strip()):
            raise ValueError("expected comma-separated numeric group ids")


# --- signals ---------------------------------------------------------------------------

SIGNAL_COMPLETIONS = ("SIGPWR", "SIGINT", "SIGTERM", "SIGKILL", "SIGHUP", "SIGQUIT",
                      "SIGUSR1", "SIGUSR2", "SIGRTMIN+3")


def parse_signal(value: str) -> int:
    """Signal name (SIGKILL, case-insensitive), SIGRTMIN+n, SIGRTMAX-n or a number -> number.

    Mirrors LXC's sig_parse(): a value not starting with "SIG" must be a number. The names are
    those of `signal.Signals`, read from `_signal` (the same constants, without the enum).
    """
    upper = value.upper()
    rtmin, rtmax = _signal.SIGRTMIN, _signal.SIGRTMAX
    if not upper.startswith("SIG"):
        if not is_uint(value):
            raise ValueError("expected a signal name (SIGTERM), SIGRTMIN+n or a number")
        n = int(value)
        if not 0 <= n <= rtmax:
            raise ValueError(f"signal number out of range 0-{rtmax}")
        return n
    for base, sign in (("SIGRTMIN", 1), ("SIGRTMAX", -1)):
        if upper == base:
            return rtmin if sign == 1 else rtmax
        if upper.startswith(base) and upper[len(base)] in "+-":
            off = upper[len(base) + 1:]
            if not is_uint(off) or (upper[len(base)] == "+") != (sign == 1):
                raise ValueError(f"expected {base}{'+' if sign == 1 else '-'}n")
            n = (rtmin if sign == 1 else rtmax) + sign * int(off)
            if not rtmin <= n <= rtmax:
                raise ValueError("real-time signal out of range")
            return n
    number = getattr(_signal, upper, None) if not upper.startswith("SIG_") else None
    if not isinstance(number, int):
        raise ValueError(f"unknown signal '{value}'")
    return number


def signal_value(allow_zero: bool = False):
    def check(value: str) -> None:
        n = parse_signal(value)
        if n == 0 and not allow_zero:
            raise ValueError("signal 0 is not allowed here")

    return check


# --- network ---------------------------------------------------------------------------

_HWADDR_DIGITS = frozenset("0123456789abcdefABCDEFxX")


def hwaddr(value: str) -> None:
    """MAC address; x/X in a hex position is a random placeholder."""
    octets = value.split(":")
    if len(octets) != 6 or not all(len(o) == 2 and _HWADDR_DIGITS.issuperset(o) for o in octets):
        raise ValueError("expected a MAC address like 00:16:3e:xx:xx:xx")


def _ip(version: int, value: str, *, network: bool):
    import ipaddress

    try:
        if network:
            return ipaddress.ip_network(value, strict=False)
        return ipaddress.ip_address(value)
    except ValueError:
        raise ValueError(f"invalid IPv{version} address '{value}'") from None


def _check_family(obj, version: int, value: str) -> None:
    if obj.version != version:
        raise ValueError(f"'{value}' is not an IPv{version} address")


def ip_address(version: int):
    """`ADDR[/PREFIX]`, plus an optional broadcast address for IPv4 (lxc.net.N.ipvX.address).

    `auto` is pyl's extension: an address from the bridge's subnet, chosen at start.
    """

    def check(value: str) -> None:
        if value == "auto":
            return
        if version == 4 and value == "auto":
            return  # pyl: an address from the bridge's subnet, allocated at start (runtime.ipam)
        parts = value.split()
        if not parts or len(parts) > (2 if version == 4 else 1):
            raise ValueError(f"expected ADDRESS/PREFIX{' [BROADCAST]' if version == 4 else ''}")
        _check_family(_ip(version, parts[0], network=True), version, parts[0])
        if len(parts) == 2:
            _check_family(_ip(version, parts[1], network=False), version, parts[1])

    return check


def ip_gateway(version: int):
    def check(value: str) -> None:
        if value in ("auto", "dev"):
            return
        _check_family(_ip(version, value, network=False), version, value)

    return check


def ip_route(version: int):
    def check(value: str) -> None:
        _check_family(_ip(version, value, network=True), version, value)

    return check


def vlan_id(allow_none: bool):
    def check(value: str) -> None:
        if allow_none and value == "none":
            return
        integer(1 if allow_none else 0, 4094)(value)

    return check


def notify_proxy(value: str) -> None:
    if not value.startswith("unix:") or len(value) == 5:
        raise ValueError("expected unix:/path or unix:@abstract")


# --- capabilities, namespaces, mounts ----------------------------------------------------

from lxctools.kernel.capnames import CAP_NAMES as CAPABILITIES  # noqa: E402  (no ctypes: cheap)


def capabilities(allow_none: bool):
    """Space-separated capability names without CAP_ (case-insensitive, as LXC) or numbers."""

    def check(value: str) -> None:
        for token in value.split():
            low = token.lower()
            if low in CAPABILITIES or (is_uint(token) and int(token) < 64):
                continue
            if allow_none and token == "none":
                continue
            raise ValueError(f"unknown capability '{token}'")

    return check


NAMESPACES = ("cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts")

MOUNT_AUTO = (
    "proc", "proc:mixed", "proc:rw",
    "sys", "sys:mixed", "sys:ro", "sys:rw",
    "cgroup", "cgroup:mixed", "cgroup:ro", "cgroup:rw",
    "cgroup-full", "cgroup-full:mixed", "cgroup-full:ro", "cgroup-full:rw",
    "cgroup:force", "cgroup:mixed:force", "cgroup:ro:force", "cgroup:rw:force",
    "cgroup-full:force", "cgroup-full:mixed:force", "cgroup-full:ro:force", "cgroup-full:rw:force",
    "cgroup2", "cgroup2:ro", "cgroup2:force", "cgroup2:ro:force",
)


def _shmounts(token: str) -> bool:
    if not token.startswith("shmounts:"):
        return False
    parts = token[len("shmounts:"):].split(":")
    return 1 <= len(parts) <= 2 and all(parts)


mount_auto = words(*MOUNT_AUTO, extra=_shmounts)


def mount_entry(value: str) -> None:
    """One fstab line: at least a source and a target."""
    if len(value.split()) < 2:
        raise ValueError("expected an fstab line: SOURCE TARGET [TYPE [OPTIONS [DUMP [PASS]]]]")


def idmap(value: str) -> None:
    parts = value.split()
    if len(parts) != 4 or parts[0] not in ("u", "g") or not all(is_uint(p) for p in parts[1:]):
        raise ValueError("expected 'u|g NSID HOSTID RANGE'")
    if int(parts[3]) == 0:
        raise ValueError("idmap range must not be 0")
    if int(parts[1]) + int(parts[3]) > 2**32 or int(parts[2]) + int(parts[3]) > 2**32:
        raise ValueError("idmap range exceeds 32-bit ids")


# The kernel's device numbers (dev_t: MINORBITS 20, 12 bits of major): a rule beyond them can
# match no device, and the pure-v2 BPF program compares 32-bit numbers (a larger one failed
# only at start, as struct.error).
MAX_MAJOR, MAX_MINOR = (1 << 12) - 1, (1 << 20) - 1


def device_rule(value: str) -> None:
    """cgroup device rule: `a`, or `TYPE MAJ:MIN ACCESS` (TYPE a/b/c, `*` wildcards, rwm).
    Numbers are ASCII digits (LXC's isdigit()): `int()` would read other scripts' digits too."""
    if not _device_rule_ok(value):
        raise ValueError("expected 'a' or 'TYPE MAJOR:MINOR ACCESS' (e.g. 'c 1:3 rwm')")
    if len(value) > 1:
        major, _, minor = value[1:].split()[0].partition(":")
        if major != "*" and int(major) > MAX_MAJOR or minor != "*" and int(minor) > MAX_MINOR:
            raise ValueError(f"no device has the number {major}:{minor} (majors go up to {MAX_MAJOR}, "
                             f"minors to {MAX_MINOR})")


def _device_rule_ok(value: str) -> bool:
    if value == "a":
        return True
    if not value or value[0] not in "abc" or value[-1].isspace():
        return False
    if len(value) == 1:
        return True
    if not value[1].isspace():
        return False
    fields = value[1:].split()
    if len(fields) > 2:
        return False
    major, colon, minor = fields[0].partition(":")
    if not colon or not all(n == "*" or is_uint(n) for n in (major, minor)):
        return False
    return len(fields) == 1 or (1 <= len(fields[1]) <= 3 and set(fields[1]) <= set("rwm"))


# --- resources, logging, misc ------------------------------------------------------------

PRLIMITS = ("as", "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice",
            "nofile", "nproc", "rss", "rtprio", "rttime", "sigpending", "stack")


def prlimit(value: str) -> None:
    parts = value.split(":")
    if len(parts) > 2 or not all(p == "unlimited" or is_uint(p) for p in parts):
        raise ValueError("expected SOFT[:HARD] with numbers or 'unlimited'")


def time_offset(value: str) -> None:
    number = value[1:] if value.startswith("-") else value
    if number.endswith(("ms", "us", "ns")):
        number = number[:-2]
    elif number.endswith(("h", "m", "s")):
        number = number[:-1]
    else:
        number = ""
    if not is_uint(number):
        raise ValueError("expected an integer with unit h, m, s, ms, us or ns (e.g. -5s)")


LOG_LEVELS = ("TRACE", "DEBUG", "INFO", "NOTICE", "WARN", "ERROR", "CRIT", "ALERT", "FATAL")


def log_level(value: str) -> None:
    if value.upper() in LOG_LEVELS:
        return
    integer(0, 8)(value)


SYSLOG_FACILITIES = ("daemon", "local0", "local1", "local2", "local3", "local4", "local5",
                     "local6", "local7")
syslog_facility = choice(*SYSLOG_FACILITIES)


_SIZE_UNITS = frozenset(["", "b", "B"] + [p + b for p in "kKmMgG" for b in ("", "b", "B")])


def byte_size(allow_auto: bool):
    """A byte count with optional B/K/KB/M/MB/G/GB suffix (LXC parse_byte_size_string)."""

    def check(value: str) -> None:
        if allow_auto and value == "auto":
            return
        digits = len(value) - len(value.lstrip("0123456789"))
        unit = value[digits:].lstrip()
        if not digits or unit not in _SIZE_UNITS:
            raise ValueError("expected a size like 1024, 64KB, 1MB" + (" or 'auto'" if allow_auto else ""))

    return check


ARCHES = ("x86", "i386", "i486", "i586", "i686", "athlon", "linux32", "x86_64", "amd64", "linux64",
          "arm", "armel", "armhf", "armv7l", "arm64", "aarch64", "mips", "mipsel", "mips64",
          "mips64el", "ppc", "powerpc", "ppc64", "ppc64el", "ppc64le", "powerpc64", "riscv64",
          "s390x")
arch = choice(*ARCHES)

HOOK_TYPES = ("pre-start", "pre-mount", "mount", "autodev", "start-host", "start", "stop",
              "post-stop", "clone", "destroy")
