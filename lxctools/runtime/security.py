"""Confinement of a container's processes: capabilities, seccomp and no_new_privs.

Owns ``lxc.cap.drop``, ``lxc.cap.keep``, ``lxc.no_new_privs`` and ``lxc.seccomp.*``:
``plan_security`` turns them into a SecurityPlan (errors are ConfigError, before anything runs),
``apply_security`` confines the container's init right before it execs, ``drop_for_attach`` does
the same for a process pyl-attach puts into a running container.

pyl is secure by default where LXC leaves it to the distro config:
- neither cap key set -> DEFAULT_CAP_DROP (LXC's common.conf list plus the host-wide extras below);
- ``lxc.seccomp.profile`` unset -> the built-in DEFAULT_POLICY; set to ``none`` or to an empty
  value -> no filter (an empty value is how LXC configs clear an inherited profile).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from lxctools.errors import ConfigError, KernelError, PylError, StartError, UsageError
from lxctools.kernel import caps
from lxctools.log import log
from lxctools.runtime.seccomp_policy import (DEFAULT_SOURCE, SeccompPlan, apply_seccomp, default_plan, has_notify_rules,
                                             load_policy)

# Dropped when a config says neither lxc.cap.drop nor lxc.cap.keep. A root container's caps are
# host caps (same user namespace), so drop those whose effect is not namespaced at all.
DEFAULT_CAP_DROP: frozenset[str] = frozenset({
    # LXC's common.conf: load kernel code, raw I/O ports and /dev/mem, host clock, LSM policy.
    "sys_module", "sys_rawio", "sys_time", "mac_admin", "mac_override",
    # Without AppArmor nothing else stops root with sys_admin from remounting /proc/sys or /sys
    # read-write, unmounting the masks, or mounting a fresh procfs (see configs/common.toml).
    "sys_admin",
    # CVE-2019-5736, CVE-2016-9962: a process entering a running container (pyl-attach's, the
    # init of pyl-execute, which never execs) is a fork of the host's supervisor: host python
    # as /proc/PID/exe, the supervisor's memory (other containers' console scrollback) and
    # environment, host fds (the cgroup2 directory it is born in, a way out of the root),
    # full capabilities and no seccomp until it confines itself. It is made non-dumpable,
    # which keeps root inside away from it only without CAP_SYS_PTRACE. LXC leaves this to
    # AppArmor, which pyl does not have. Tracing the container's own processes needs no
    # capability.
    "sys_ptrace",
    # BPF tracing programs (bpf_probe_read_kernel, bpf_probe_write_user) and perf events on
    # the host kernel and every host process; with sys_admin gone these two grant exactly that.
    # The default seccomp policy denies bpf and perf_event_open as well.
    "bpf", "perfmon",
    # Audit is host-wide: rules/enable (control) and the host's audit stream (read).
    # audit_write stays: login, sshd and su write audit records and fail hard without it.
    "audit_control", "audit_read",
    # Clear or reconfigure the host kernel log (and read kernel pointers with kptr_restrict=1).
    "syslog",
    # Host power: RTC alarms that wake the machine, blocking system suspend.
    "wake_alarm", "block_suspend",
})
# Kept on purpose:
# - sys_boot: reboot(2) in a child pid namespace only ends that namespace's init (the container
#   restarts or stops); busybox/systemd reboot and poweroff need it. kexec, the host-wide part,
#   is denied by the default seccomp policy.
# - sys_pacct: BSD process accounting is per pid namespace.

CAP_KEYS = ("lxc.cap.drop", "lxc.cap.keep")
ELEVATED_PRIVILEGES = frozenset({"CAP", "CGROUP", "LSM"})  # lxc-attach -e names


@dataclass(frozen=True)
class SecurityPlan:
    cap_keep: frozenset[str] | None     # lxc.cap.keep allow-list (may be empty: keep nothing)
    cap_drop: frozenset[str]            # used when cap_keep is None
    no_new_privs: bool
    seccomp: SeccompPlan | None
    seccomp_profile: str | None         # file the filter came from, DEFAULT_SOURCE, or None
    seccomp_allow_nesting: bool = False
    warnings: tuple[str, ...] = ()      # for the user of pyl-start (the start's reply carries them)
    # SECCOMP compiled by the supervisor (compiled()), so the confined process only installs it.
    seccomp_program: bytes | None = field(default=None, repr=False)

    def kept_caps(self, last_cap: int) -> frozenset[int]:
        """Capabilities the container keeps on a kernel whose last capability is LAST_CAP.

        Capabilities newer than pyl's table are kept by a drop list and dropped by a keep list,
        as in LXC: a keep list means "nothing else".
        """
        every = range(last_cap + 1)
        if self.cap_keep is not None:
            wanted = {caps.CAP_NUMBERS[name] for name in self.cap_keep}
            return frozenset(cap for cap in every if cap in wanted)
        dropped = {caps.CAP_NUMBERS[name] for name in self.cap_drop}
        return frozenset(cap for cap in every if cap not in dropped)


def _lines(value: str | list[str] | None) -> list[str]:
    from lxctools.config import lines
    return lines(value)


def _single(values: Mapping[str, str | list[str]], key: str) -> str | None:
    lines = _lines(values.get(key))
    return lines[-1].strip() if lines else None


def _flag(values: Mapping[str, str | list[str]], key: str) -> bool:
    text = _single(values, key)
    if text in (None, "", "0"):
        return False
    if text == "1":
        return True
    raise ConfigError(f"{key}: expected 0 or 1, got {text!r}")


def _cap_names(key: str, names: Iterable[str]) -> frozenset[str]:
    result = set()
    for name in names:
        number = caps.cap_number(name)
        if number is None:
            raise ConfigError(f"{key}: unknown capability {name!r}",
                              hint="names as in capabilities(7) without CAP_, e.g. sys_admin")
        result.add(caps.cap_name(number))
    return frozenset(result)


def _parse_cap_drop(lines: list[str]) -> frozenset[str]:
    names: list[str] = []
    for line in lines:
        if not line.strip():
            names.clear()  # an empty lxc.cap.drop clears what came before (e.g. userns.conf)
        names.extend(line.split())
    return _cap_names("lxc.cap.drop", names)


def _parse_cap_keep(lines: list[str]) -> frozenset[str] | None:
    names: list[str] | None = None
    for line in lines:
        if not line.strip():
            names = None
            continue
        for token in line.split():
            if token == "none":
                names = []  # as LXC: clears the list and keeps it active (keep no capability)
            else:
                names = (names or []) + [token]
    return None if names is None else _cap_names("lxc.cap.keep", names)


def plan_security(values: Mapping[str, str | list[str]]) -> SecurityPlan:
    cap_drop = _parse_cap_drop(_lines(values.get("lxc.cap.drop")))
    cap_keep = _parse_cap_keep(_lines(values.get("lxc.cap.keep")))
    if cap_keep is not None and cap_drop:
        raise ConfigError("lxc.cap.drop and lxc.cap.keep are both set; use one of them")
    if not any(key in values for key in CAP_KEYS):
        cap_drop = DEFAULT_CAP_DROP

    profile = _single(values, "lxc.seccomp.profile")
    seccomp: SeccompPlan | None
    if profile is None:
        seccomp, profile = default_plan(), DEFAULT_SOURCE
    elif profile in ("", "none"):
        seccomp, profile = None, None
    else:
        seccomp = load_policy(profile)
    warnings = [f"{key} is not supported by pyl; seccomp notify rules fail with ENOSYS"
                for key in ("lxc.seccomp.notify.proxy", "lxc.seccomp.notify.cookie") if _single(values, key)]
    if seccomp is not None and has_notify_rules(seccomp):
        warnings.append(f"{profile}: notify rules have no proxy in pyl; those syscalls fail with ENOSYS")

    return SecurityPlan(
        cap_keep=cap_keep,
        cap_drop=cap_drop,
        no_new_privs=_flag(values, "lxc.no_new_privs"),
        seccomp=seccomp,
        seccomp_profile=profile,
        seccomp_allow_nesting=_flag(values, "lxc.seccomp.allow_nesting"),
        warnings=tuple(warnings),
    )


def compiled(plan: SecurityPlan) -> SecurityPlan:
    """PLAN with its seccomp filter compiled: called by the supervisor before it forks a
    process that confines itself (a container's init, an attached process). A policy libseccomp
    cannot compile fails here, before anything of the start or attach exists."""
    if plan.seccomp is None or plan.seccomp_program is not None:
        return plan
    from lxctools.runtime.seccomp_policy import compile_program
    return replace(plan, seccomp_program=compile_program(plan.seccomp))


def seccomp_active(proc_root: Path | str = "/proc") -> bool:
    """True if the calling process already runs under a seccomp mode (Seccomp: in status)."""
    try:
        for line in Path(proc_root, "self/status").read_text().splitlines():
            if line.startswith("Seccomp:"):
                return line.split(":", 1)[1].strip() not in ("", "0")
    except OSError:
        pass
    return False


def apply_security(plan: SecurityPlan, *, proc_root: Path | str = "/proc") -> None:
    """Confine the calling process (container init, root, right before execve)."""
    last_cap = caps.cap_last_cap(proc_root)
    _confine(plan.kept_caps(last_cap), plan, last_cap, proc_root)


def drop_for_attach(plan: SecurityPlan, elevated: set[str], *, proc_root: Path | str = "/proc") -> None:
    """Re-apply the container's confinement to an attached process before it execs.

    ELEVATED holds lxc-attach ``-e`` privilege names: ``CAP`` keeps the attacher's capabilities;
    ``CGROUP`` and ``LSM`` are handled elsewhere (cgroup placement; pyl has no LSM). As in LXC the
    seccomp filter and no_new_privs still apply.
    """
    names = {name.upper() for name in elevated}
    unknown = names - ELEVATED_PRIVILEGES
    if unknown:
        raise UsageError(f"unknown elevated privilege {sorted(unknown)[0]!r} (CAP, CGROUP or LSM)")
    last_cap = caps.cap_last_cap(proc_root)
    kept = None if "CAP" in names else plan.kept_caps(last_cap)
    _confine(kept, plan, last_cap, proc_root)


def _confine(kept: frozenset[int] | None, plan: SecurityPlan, last_cap: int, proc_root: Path | str) -> None:
    # Order matters:
    # 1. bounding set first: PR_CAPBSET_DROP needs CAP_SETPCAP in the effective set, which the
    #    capset in step 2 may remove.
    # 2. ambient cleared, inheritable = kept, effective/permitted = kept (+ sys_admin for now if
    #    step 4 needs it). After execve a uid-0 init gets permitted = inheritable | bounding =
    #    kept, so this only narrows the window until exec.
    # 3. no_new_privs before the filter: with it set, loading needs no privilege at all.
    # 4. seccomp while still privileged: without NNP the kernel wants CAP_SYS_ADMIN to load.
    # 5. only then drop sys_admin if the container does not keep it. That capset runs under the
    #    filter, so a custom allow-list must allow capset (DEFAULT_POLICY does).
    load_filter = plan.seccomp is not None and (plan.seccomp_allow_nesting or not seccomp_active(proc_root))
    if plan.seccomp is not None and not load_filter:
        log.info("seccomp", f"already under seccomp and lxc.seccomp.allow_nesting = 0: not loading {plan.seccomp_profile}")
    admin_for_load = load_filter and not plan.no_new_privs and kept is not None and caps.CAP_SYS_ADMIN not in kept
    bounding = 0
    try:
        if kept is not None:
            # One read of the set (41 prctls): what is left after the drops is known from it.
            bounding = caps.bounding_set(last_cap)
            keep_mask = caps.mask_of(kept)
            for cap in range(last_cap + 1):
                if bounding >> cap & 1 and cap not in kept:
                    caps.capbset_drop(cap)
            bounding &= keep_mask
            caps.cap_ambient_clear_all()
            interim = keep_mask | (1 << caps.CAP_SYS_ADMIN if admin_for_load else 0)
            _narrow(interim, keep_mask, bounding)
        if plan.no_new_privs:
            caps.set_no_new_privs()
    except (KernelError, PylError) as exc:
        raise StartError(f"cannot drop capabilities: {exc}") from exc
    if load_filter:
        assert plan.seccomp is not None
        apply_seccomp(plan.seccomp, plan.seccomp_program)
    if admin_for_load:
        assert kept is not None
        try:
            _narrow(caps.mask_of(kept), caps.mask_of(kept), bounding)
        except (KernelError, PylError) as exc:
            raise StartError(f"cannot drop sys_admin after loading the seccomp filter: {exc}",
                             hint="the seccomp policy must allow capset") from exc


def _narrow(permitted: int, inheritable: int, bounding: int) -> None:
    """Shrink effective/permitted to PERMITTED and set inheritable to INHERITABLE (as allowed
    with BOUNDING, the process's bounding set)."""
    current = caps.capget()
    # The kernel refuses inheritable bits outside (old inheritable | bounding) and, without
    # CAP_SETPCAP, outside (old inheritable | permitted): ask only for what it can grant.
    inheritable &= current.inheritable | bounding
    inheritable &= current.inheritable | current.permitted
    new_permitted = current.permitted & permitted
    caps.capset(effective=current.effective & new_permitted, permitted=new_permitted,
                inheritable=inheritable)
