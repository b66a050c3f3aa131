"""LXC seccomp policy files: parse them into a SeccompPlan, compile and load the plan.

Owns the policy language (version 1 numeric allow-list, version 2 deny/allow-lists with arch
sections, actions and argument filters; reference §4.6) and pyl's built-in DEFAULT_POLICY.
Parsing is pure: a plan is host-independent data. Compiling resolves names for the running
kernel's arches, where (as in LXC) a syscall this host does not know is skipped with a debug log.

Deliberate differences from LXC 5, each stricter or clearer, none changing a valid policy:
- ``kill`` kills the whole process (SECCOMP_RET_KILL_PROCESS), not one thread.
- An ``[x86]`` section applies to x86 only; LXC adds such rules to every arch of the host.
- ``log`` is accepted as an action; ``&=`` without a mask is an error (LXC silently uses 0, a rule
  that can only match value 0); v1 files may hold comments and say ``whitelist``.
- Argument filters may follow the syscall without an explicit action (LXC rejects that).
"""

from __future__ import annotations

import enum
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from lxctools.errors import ConfigError, KernelError, StartError
from lxctools.kernel import seccomp as k
from lxctools.log import log

MNT_FORCE = 1
EACCES = 13
MAX_ERRNO = 4095
MAX_ARGS = 6


class ActionKind(enum.StrEnum):
    KILL = "kill"
    ERRNO = "errno"
    ALLOW = "allow"
    TRAP = "trap"
    NOTIFY = "notify"
    LOG = "log"


@dataclass(frozen=True)
class SeccompAction:
    kind: ActionKind
    errno: int = 0  # only for ERRNO

    def __str__(self) -> str:
        return f"errno {self.errno}" if self.kind is ActionKind.ERRNO else str(self.kind)


KILL = SeccompAction(ActionKind.KILL)
ALLOW = SeccompAction(ActionKind.ALLOW)


def errno_action(errno: int) -> SeccompAction:
    return SeccompAction(ActionKind.ERRNO, errno)


class CmpOp(enum.StrEnum):
    NE = "!="
    LT = "<"
    LE = "<="
    EQ = "=="
    GE = ">="
    GT = ">"
    MASKED_EQ = "&="


_OP_NAMES: dict[str, CmpOp] = {op.value: op for op in CmpOp} | {f"SCMP_CMP_{op.name}": op for op in CmpOp}


@dataclass(frozen=True)
class ArgFilter:
    """``[index,value,op(,mask)]``: syscall argument INDEX compared to VALUE (after & MASK for &=)."""

    index: int
    value: int
    op: CmpOp
    mask: int = 0


@dataclass(frozen=True)
class SeccompRule:
    syscall: str | int          # a name (v2) or a native syscall number (v1)
    action: SeccompAction
    args: tuple[ArgFilter, ...] = ()
    arch: str = "all"           # "all", "native" (v1 numbers) or a libseccomp arch name
    line: int = field(default=0, compare=False)


@dataclass(frozen=True)
class SeccompPlan:
    default_action: SeccompAction
    rules: tuple[SeccompRule, ...]
    source: str = "<policy>"


# Section headers LXC accepts -> libseccomp arch names (arm64 is libseccomp's aarch64).
_SECTIONS: dict[str, str] = {name: name for name in (
    "x86", "x86_64", "x32", "arm", "ppc", "ppc64", "ppc64le", "mips", "mips64", "mips64n32",
    "mipsel", "mipsel64", "mipsel64n32", "s390", "s390x", "riscv64")} | {"arm64": "aarch64", "all": "all"}

Fail = Callable[[int, str], ConfigError]  # (line number, message) -> error naming source:line

_SYSCALL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ARG_GROUP = re.compile(r"\[([^\[\]]*)\]")


def load_policy(path: str | os.PathLike[str]) -> SeccompPlan:
    try:
        text = Path(path).read_text(encoding="utf-8", errors="surrogateescape")
    except OSError as exc:
        raise ConfigError(f"seccomp policy {os.fspath(path)}: {exc.strerror or exc}") from exc
    return parse_policy(text, os.fspath(path))


def parse_policy(text: str, source: str = "<policy>") -> SeccompPlan:
    lines = text.splitlines()

    def fail(lineno: int, message: str) -> ConfigError:
        return ConfigError(f"{source}:{lineno}: {message}")

    if not lines or not lines[0].strip():
        raise fail(1, "missing policy version (first line must be 1 or 2)")
    version = lines[0].strip()
    if version not in ("1", "2"):
        raise fail(1, f"unsupported policy version {version!r} (expected 1 or 2)")
    if len(lines) < 2 or not lines[1].strip():
        raise fail(2, "missing policy type (allowlist or denylist)")
    header = lines[1].split()
    if "debug" in lines[1]:
        raise fail(2, "the 'debug' directive is not implemented")
    if version == "1":
        return _parse_v1(header, lines, source, fail)
    return _parse_v2(header, lines, source, fail)


def _parse_v1(header: list[str], lines: list[str], source: str, fail: Fail) -> SeccompPlan:
    if header[0] not in ("allowlist", "whitelist"):
        raise fail(2, f"version 1 policies must be an allowlist, not {header[0]!r}")
    rules: list[SeccompRule] = []
    for lineno, raw in enumerate(lines[2:], start=3):
        text = _strip_comment(raw)
        if not text:
            continue
        if not re.fullmatch(r"[0-9]+", text):
            raise fail(lineno, f"expected a syscall number, got {text!r}")
        rules.append(SeccompRule(int(text), ALLOW, arch="native", line=lineno))
    return SeccompPlan(KILL, tuple(rules), source)


def _parse_v2(header: list[str], lines: list[str], source: str, fail: Fail) -> SeccompPlan:
    kind = header[0]
    if kind in ("denylist", "blacklist"):
        default_action, rule_action = ALLOW, KILL
    elif kind in ("allowlist", "whitelist"):
        default_action, rule_action = KILL, ALLOW
    else:
        raise fail(2, f"bad policy type {kind!r} (expected denylist, blacklist, allowlist or whitelist)")
    # As in LXC, an action after the type replaces the action for *unlisted* syscalls.
    if len(header) > 1:
        action, rest = _parse_action(header[1:], 2, fail)
        if rest or action is None:
            raise fail(2, f"unrecognized default action {' '.join(header[1:])!r}")
        default_action = action

    arch = "all"
    rules: list[SeccompRule] = []
    for lineno, raw in enumerate(lines[2:], start=3):
        text = _strip_comment(raw)
        if not text:
            continue
        if text.startswith("["):
            section = re.fullmatch(r"\[\s*(\w+)\s*\]", text)
            if section is None or section.group(1).lower() not in _SECTIONS:
                raise fail(lineno, f"unsupported architecture section {text!r}")
            arch = _SECTIONS[section.group(1).lower()]
            continue
        tokens = text.split(None, 1)
        name = tokens[0]
        if name == "reject_force_umount":
            if len(tokens) > 1:
                raise fail(lineno, "reject_force_umount takes no arguments")
            rules.append(SeccompRule("umount2", errno_action(EACCES),
                                     (ArgFilter(1, MNT_FORCE, CmpOp.MASKED_EQ, MNT_FORCE),), arch, lineno))
            continue
        if not _SYSCALL_NAME.fullmatch(name):
            raise fail(lineno, f"bad syscall name {name!r}")
        rest_text = tokens[1] if len(tokens) > 1 else ""
        action, rest_text = _parse_action_text(rest_text, lineno, fail)
        args = _parse_args(rest_text, lineno, fail)
        rules.append(SeccompRule(name, action or rule_action, args, arch, lineno))
    return SeccompPlan(default_action, tuple(rules), source)


def _strip_comment(raw: str) -> str:
    text = raw.strip()
    if text.startswith("#"):
        return ""
    # LXC's own common.seccomp carries a trailing "# comment" after reject_force_umount.
    match = re.search(r"\s#", text)
    return text[: match.start()].strip() if match else text


def _parse_action(tokens: list[str], lineno: int, fail: Fail) -> tuple[SeccompAction | None, list[str]]:
    if not tokens:
        return None, tokens
    word = tokens[0]
    if word == "errno":
        if len(tokens) < 2 or not re.fullmatch(r"[0-9]+", tokens[1]):
            raise fail(lineno, "'errno' needs a number (errno N)")
        number = int(tokens[1])
        if number > MAX_ERRNO:
            raise fail(lineno, f"errno {number} out of range (0-{MAX_ERRNO})")
        return errno_action(number), tokens[2:]
    try:
        kind = ActionKind(word)
    except ValueError:
        if word.startswith("["):
            return None, tokens
        raise fail(lineno, f"unrecognized action {word!r}") from None
    return SeccompAction(kind), tokens[1:]


def _parse_action_text(text: str, lineno: int, fail: Fail) -> tuple[SeccompAction | None, str]:
    bracket = text.find("[")
    head, tail = (text, "") if bracket < 0 else (text[:bracket], text[bracket:])
    action, rest = _parse_action(head.split(), lineno, fail)
    if rest:
        raise fail(lineno, f"unexpected {' '.join(rest)!r} after the action")
    return action, tail


def _parse_args(text: str, lineno: int, fail: Fail) -> tuple[ArgFilter, ...]:
    filters: list[ArgFilter] = []
    position = 0
    for match in _ARG_GROUP.finditer(text):
        if text[position:match.start()].strip():
            raise fail(lineno, f"unexpected {text[position:match.start()].strip()!r} in argument filters")
        position = match.end()
        filters.append(_parse_arg(match.group(1), lineno, fail))
    if text[position:].strip():
        raise fail(lineno, f"bad argument filter {text[position:].strip()!r} (expected [index,value,op(,mask)])")
    if len(filters) > MAX_ARGS:
        raise fail(lineno, f"at most {MAX_ARGS} argument filters per rule")
    return tuple(filters)


def _parse_arg(body: str, lineno: int, fail: Fail) -> ArgFilter:
    fields = [part.strip() for part in body.split(",")]
    if len(fields) not in (3, 4):
        raise fail(lineno, f"bad argument filter [{body}] (expected [index,value,op(,mask)])")
    index = _parse_uint(fields[0], lineno, fail, "argument index")
    if index >= MAX_ARGS:
        raise fail(lineno, f"argument index {index} out of range (0-5)")
    value = _parse_uint(fields[1], lineno, fail, "argument value")
    op = _OP_NAMES.get(fields[2])
    if op is None:
        raise fail(lineno, f"unknown comparison {fields[2]!r} (==, !=, <, <=, >, >=, &= or SCMP_CMP_*)")
    mask = _parse_uint(fields[3], lineno, fail, "argument mask") if len(fields) == 4 else 0
    if op is CmpOp.MASKED_EQ and len(fields) == 3:
        raise fail(lineno, "'&=' needs a mask: [index,value,&=,mask]")
    return ArgFilter(index, value, op, mask)


def _parse_uint(text: str, lineno: int, fail: Fail, what: str) -> int:
    # strtoull(base 0) spellings: 0x1f, 017 (octal), 31.
    try:
        if re.fullmatch(r"0[0-7]+", text):
            number = int(text, 8)
        elif re.fullmatch(r"0[xX][0-9a-fA-F]+|[0-9]+", text):
            number = int(text, 0)
        else:
            raise ValueError(text)
    except ValueError:
        raise fail(lineno, f"bad {what} {text!r}") from None
    if number >= 1 << 64:
        raise fail(lineno, f"{what} {text} does not fit in 64 bits")
    return number


# ---------------------------------------------------------------------------------------------
# pyl's default policy: LXC's common.seccomp (reject_force_umount; kexec_load, open_by_handle_at,
# init_module, finit_module, delete_module) plus the calls below. A root container shares the
# host's initial user namespace, so every capability it keeps is a *host* capability: the additions
# are the calls where that reaches past every namespace. Everything listed fails with EPERM, which
# programs already handle as "not allowed here"; nothing is killed.
# Considered and left out:
# - mount/umount2 (incl. of proc): every init mounts /proc, /sys, devpts; dropped caps, the
#   mount plan and the device cgroup are what confine mounts.
# - reboot: pid-namespace aware (it only ends the container's init) and busybox reboot needs it;
#   the kexec variants are what could replace the host kernel, and those are denied.
# - io_uring_*: used by databases and runtimes that do not fall back on EPERM; hosts that want it
#   off have the kernel.io_uring_disabled sysctl.
# - swapon/swapoff, iopl/ioperm, settimeofday/adjtimex: need sys_admin on a host block device
#   (blocked by the device cgroup) or caps pyl drops by default (sys_rawio, sys_time).
# ---------------------------------------------------------------------------------------------
DEFAULT_POLICY = """\
2
denylist
# pyl default seccomp policy: LXC's common.seccomp plus host-reaching calls.
# Listed calls fail with EPERM (errno 1); unlisted calls are allowed.
# umount2(..., MNT_FORCE) fails with EACCES (LXC's rule): a forced unmount aborts I/O
# on a network filesystem the host and other containers may share.
reject_force_umount
[all]
# Replace the running (host) kernel. kexec_file_load is the file-based twin that
# LXC's common.seccomp misses.
kexec_load errno 1
kexec_file_load errno 1
# "Shocker" (2014): with CAP_DAC_READ_SEARCH, guessed file handles open any inode of
# the filesystem under the rootfs, outside the container's view.
open_by_handle_at errno 1
# Kernel modules are host-wide (sys_module is dropped too; this holds if it is kept).
init_module errno 1
finit_module errno 1
delete_module errno 1
# CAP_BPF with CAP_PERFMON (or CAP_SYS_ADMIN) of a root container is enough to load BPF
# tracing programs and to open perf events on the host kernel and every host process.
bpf errno 1
perf_event_open errno 1
# Keyrings are not namespaced: root in a root container owns the host root's keys.
keyctl errno 1
add_key errno 1
request_key errno 1
# userfaultfd stretches kernel race windows for exploits; a container that keeps
# CAP_SYS_PTRACE passes the check vm.unprivileged_userfaultfd=0 is meant to make.
userfaultfd errno 1
"""

DEFAULT_SOURCE = "<pyl default seccomp policy>"


def default_plan() -> SeccompPlan:
    return parse_policy(DEFAULT_POLICY, DEFAULT_SOURCE)


def _action_value(action: SeccompAction) -> int:
    return {
        ActionKind.KILL: k.SCMP_ACT_KILL_PROCESS,
        ActionKind.ALLOW: k.SCMP_ACT_ALLOW,
        ActionKind.TRAP: k.SCMP_ACT_TRAP,
        ActionKind.NOTIFY: k.SCMP_ACT_NOTIFY,
        ActionKind.LOG: k.SCMP_ACT_LOG,
        ActionKind.ERRNO: k.SCMP_ACT_ERRNO(action.errno),
    }[action.kind]


_CMP_VALUES: dict[CmpOp, int] = {
    CmpOp.NE: k.SCMP_CMP_NE, CmpOp.LT: k.SCMP_CMP_LT, CmpOp.LE: k.SCMP_CMP_LE, CmpOp.EQ: k.SCMP_CMP_EQ,
    CmpOp.GE: k.SCMP_CMP_GE, CmpOp.GT: k.SCMP_CMP_GT, CmpOp.MASKED_EQ: k.SCMP_CMP_MASKED_EQ,
}


def _arg_cmps(args: tuple[ArgFilter, ...]) -> list[k.ArgCmp]:
    return [k.ArgCmp(a.index, _CMP_VALUES[a.op], a.mask, a.value) if a.op is CmpOp.MASKED_EQ
            else k.ArgCmp(a.index, _CMP_VALUES[a.op], a.value) for a in args]


def filter_arches(native: str) -> tuple[str, ...]:
    """The native arch first, then the compat ABIs its kernel also runs."""
    return (native, *k.COMPAT_ARCHES.get(native, ()))


def _new_context(default: int, arch: str, native: str) -> int:
    ctx = k.seccomp_init(default)
    try:
        # LXC sets no_new_privs itself when lxc.no_new_privs asks; libseccomp would force it on.
        k.seccomp_attr_set(ctx, k.SCMP_FLTATR_CTL_NNP, 0)
        try:
            # Let a tracer skip a syscall with nr -1 (as LXC: debuggers inside the container).
            k.seccomp_attr_set(ctx, k.SCMP_FLTATR_API_TSKIP, 1)
        except KernelError:
            pass
        if arch != native:
            k.seccomp_arch_add(ctx, k.SCMP_ARCHES[arch])
            k.seccomp_arch_remove(ctx, k.SCMP_ARCH_NATIVE)
    except BaseException:
        k.seccomp_release(ctx)
        raise
    return ctx


def _add_rule(ctx: int, arch: str, native: str, rule: SeccompRule, default: int, where: str) -> None:
    action = _action_value(rule.action)
    if action == default:
        log.debug("seccomp", f"{where}: {rule.syscall} has the default action, nothing to add")
        return
    if isinstance(rule.syscall, int):
        number = rule.syscall
    else:
        number = k.seccomp_syscall_resolve_name(rule.syscall)
        if number == k.NR_SCMP_ERROR:
            log.debug("seccomp", f"{where}: syscall {rule.syscall} is unknown on this host, skipped")
            return
        if arch == native and number < 0:
            log.debug("seccomp", f"{where}: {rule.syscall} is a pseudo syscall on {arch}, skipped")
            return
        if arch != native and k.seccomp_syscall_resolve_name_arch(k.SCMP_ARCHES[arch], rule.syscall) < 0:
            log.debug("seccomp", f"{where}: {rule.syscall} does not exist on {arch}, skipped")
            return
    try:
        k.seccomp_rule_add_array(ctx, action, number, _arg_cmps(rule.args))
    except KernelError as exc:
        raise StartError(f"{where}: cannot add seccomp rule for {rule.syscall} ({rule.action}) "
                         f"on {arch}: {os.strerror(exc.errno)}") from exc


def compile_filter(plan: SeccompPlan) -> int:
    """Build a libseccomp context for PLAN on this host's arches; the caller releases it."""
    native = k.ARCH_NAMES.get(k.seccomp_arch_native())
    if native is None:
        raise StartError("seccomp: unsupported native architecture")
    default = _action_value(plan.default_action)
    arches = filter_arches(native)
    contexts: dict[str, int] = {}
    try:
        for arch in arches:
            contexts[arch] = _new_context(default, arch, native)
        for rule in plan.rules:
            where = f"{plan.source}:{rule.line}"
            if rule.arch == "all":
                targets: tuple[str, ...] = arches
            elif rule.arch == "native":
                targets = (native,)
            elif rule.arch in contexts:
                targets = (rule.arch,)
            else:
                log.debug("seccomp", f"{where}: [{rule.arch}] rules do not apply on {native}")
                continue
            for arch in targets:
                _add_rule(contexts[arch], arch, native, rule, default, where)
        base = contexts.pop(native)
        try:
            # Each arch got its own context so [arch] sections apply to that arch only.
            while contexts:
                arch, ctx = contexts.popitem()
                try:
                    k.seccomp_merge(base, ctx)
                except BaseException:
                    k.seccomp_release(ctx)
                    raise
        except BaseException:
            k.seccomp_release(base)
            raise
        return base
    except KernelError as exc:
        raise StartError(f"seccomp: {plan.source}: {exc}") from exc
    finally:
        for ctx in contexts.values():
            k.seccomp_release(ctx)


def _compiled(plan: SeccompPlan, export: Callable[[int], Any]) -> Any:
    """PLAN compiled by libseccomp and handed out by EXPORT (a kernel.seccomp export_*)."""
    ctx = compile_filter(plan)
    try:
        return export(ctx)
    except KernelError as exc:
        raise StartError(f"seccomp: {plan.source}: {exc}") from exc
    finally:
        k.seccomp_release(ctx)


def export_pfc(plan: SeccompPlan) -> str:
    """The compiled filter as libseccomp pseudo code (for --debug output and tests)."""
    return _compiled(plan, k.export_pseudo_code)


def has_notify_rules(plan: SeccompPlan) -> bool:
    return any(rule.action.kind is ActionKind.NOTIFY for rule in plan.rules)


# Programs compiled in this process (the supervisor), by policy: a policy is read from its file
# at every start, so a changed file is a new key; a few policies per host, hence the small bound.
_PROGRAMS: dict[SeccompPlan, bytes] = {}
_PROGRAMS_KEPT = 16


def compile_program(plan: SeccompPlan) -> bytes:
    """PLAN as the BPF program to install (kernel.seccomp.load_program): compiled by libseccomp
    once per policy in the supervisor, before it forks, instead of in every container's init."""
    program = _PROGRAMS.get(plan)
    if program is None:
        program = _compiled(plan, k.export_program)
        if len(_PROGRAMS) >= _PROGRAMS_KEPT:
            _PROGRAMS.pop(next(iter(_PROGRAMS)))
        _PROGRAMS[plan] = program
    return program


def apply_seccomp(plan: SeccompPlan, program: bytes | None = None) -> None:
    """Load PLAN on the calling process (needs CAP_SYS_ADMIN or no_new_privs): PROGRAM, its
    compile_program bytes, when the caller has them (the supervisor compiles before it forks);
    else compiled here. One way to the kernel either way: kernel.seccomp.load_program.

    A ``notify`` rule gets no listener: pyl has no notify proxy yet, so those syscalls fail
    with ENOSYS (the user was warned at start, SecurityPlan.warnings).
    """
    if program is None:
        program = compile_program(plan)
    try:
        k.load_program(program)
    except KernelError as exc:
        raise StartError(f"seccomp: cannot load {plan.source}: {exc}", hint=exc.hint) from exc
