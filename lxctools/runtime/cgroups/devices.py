"""Device access rules: parse lxc.cgroup[2].devices.allow/deny into one policy (the default is
LXC common.conf's allow-list), and render it for the v1 devices controller. The pure-v2 form
(a BPF program) is compiled by lxctools.kernel.bpf from the same policy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable

from lxctools.errors import ConfigError

# LXC's /usr/share/lxc/config/common.conf device allow-list, in config order.
DEFAULT_DEVICE_RULES: tuple[tuple[str, str], ...] = (
    ("deny", "a"),
    ("allow", "c *:* m"),
    ("allow", "b *:* m"),
    ("allow", "c 1:3 rwm"),    # null
    ("allow", "c 1:5 rwm"),    # zero
    ("allow", "c 1:7 rwm"),    # full
    ("allow", "c 1:8 rwm"),    # random
    ("allow", "c 1:9 rwm"),    # urandom
    ("allow", "c 5:0 rwm"),    # tty
    # no c 5:1: that is the host's system console (a node made with mknod opens the admin's
    # serial console); the container's /dev/console is a pty, c 136:N
    ("allow", "c 5:2 rwm"),    # ptmx
    ("allow", "c 136:* rwm"),  # pts
    ("allow", "c 10:229 rwm"), # fuse
)

_RULE = re.compile(r"^([abc])(?:\s+(\*|\d+):(\*|\d+)(?:\s+([rwm]+))?)?$")


@dataclass(frozen=True)
class DeviceRule:
    type: str            # "a", "b" or "c"
    major: int | None    # None = any
    minor: int | None
    access: str          # subset of "rwm", canonical order
    allow: bool

    @property
    def is_reset(self) -> bool:
        return self.type == "a" and self.major is None and self.minor is None and self.access == "rwm"

    def v1_text(self) -> str:
        if self.type == "a":
            return "a"
        maj = "*" if self.major is None else str(self.major)
        mnr = "*" if self.minor is None else str(self.minor)
        return f"{self.type} {maj}:{mnr} {self.access}"


@dataclass(frozen=True)
class DevicePolicy:
    """Default verdict plus the exceptions to it (each with ``allow != default_allow``).

    ``reset`` says the config began from "a" (so v1 must write it); without it the cgroup keeps
    what it inherits, which on a fresh cgroup is "allow all" below an unrestricted parent.
    """

    default_allow: bool
    reset: bool
    rules: tuple[DeviceRule, ...]

    def bpf_rules(self, granted: Iterable[DeviceRule] = ()) -> list[tuple]:
        """The rules as kernel.bpf compiles them, GRANTED ones (pyl-device's) first: the program
        stops at the first rule that matches, so a device handed in wins over a broad deny."""
        return [(r.type, r.major, r.minor, r.access, r.allow) for r in (*granted, *self.rules)]

    def v1_writes(self) -> tuple[tuple[str, str], ...]:
        """(file, line) pairs to write, in order, into a v1 devices cgroup."""
        out: list[tuple[str, str]] = []
        if self.reset:
            out.append(("devices.allow" if self.default_allow else "devices.deny", "a"))
        out += [("devices.allow" if r.allow else "devices.deny", r.v1_text()) for r in self.rules]
        return tuple(out)


def parse_rule(text: str, allow: bool, key: str) -> DeviceRule:
    m = _RULE.match(text.strip())
    if not m:
        raise ConfigError(f"{key} = {text}: expected 'TYPE MAJOR:MINOR ACCESS' (TYPE a/b/c, ACCESS of rwm)")
    dtype, major, minor, access = m.groups()
    from lxctools.config.validators import MAX_MAJOR, MAX_MINOR
    if major not in (None, "*") and int(major) > MAX_MAJOR or minor not in (None, "*") and int(minor) > MAX_MINOR:
        # past the kernel's dev_t no node exists, and the BPF program's 32-bit immediates could not hold it
        raise ConfigError(f"{key} = {text}: no device has the number {major}:{minor}")
    access = "".join(c for c in "rwm" if c in (access or "rwm"))
    return DeviceRule(
        dtype,
        None if major in (None, "*") else int(major),
        None if minor in (None, "*") else int(minor),
        access,
        allow,
    )


def build_policy(allow: Iterable[str], deny: Iterable[str], *, prefix: str) -> DevicePolicy:
    """Fold rules into a policy with LXC's semantics.

    A config mapping keeps each key's lines in order but not the interleaving of allow and deny
    lines, so a reset ("a") is applied before the specific rules; if both ``deny = a`` and
    ``allow = a`` appear the allow-list (safer) wins. Specific rules agreeing with the default are
    redundant and dropped, as LXC ignores deny rules in an allow-list and vice versa.
    """
    rules = [parse_rule(t, False, f"{prefix}.deny") for t in deny if t.strip()]
    rules += [parse_rule(t, True, f"{prefix}.allow") for t in allow if t.strip()]
    resets = [r for r in rules if r.is_reset]
    reset = bool(resets)
    default_allow = all(r.allow for r in resets) if resets else True
    exceptions = tuple(r for r in rules if not r.is_reset and r.allow != default_allow)
    return DevicePolicy(default_allow, reset, exceptions)


DEFAULT_DEVICE_POLICY = build_policy(
    [t for verdict, t in DEFAULT_DEVICE_RULES if verdict == "allow"],
    [t for verdict, t in DEFAULT_DEVICE_RULES if verdict == "deny"],
    prefix="lxc.cgroup.devices",
)


def config_policy(values, prefix: str) -> DevicePolicy | None:
    """The policy a config's PREFIX.allow/.deny keys give (lxc.cgroup.devices or
    lxc.cgroup2.devices), LXC's default allow-list when it has neither, None when they are
    present but empty (userns.conf style "lxc.cgroup.devices.allow =": nothing is enforced)."""
    from lxctools.config import lines
    allow, deny = values.get(prefix + ".allow"), values.get(prefix + ".deny")
    if allow is None and deny is None:
        return DEFAULT_DEVICE_POLICY
    policy = build_policy(lines(allow), lines(deny), prefix=prefix)
    return policy if policy.reset or policy.rules else None
