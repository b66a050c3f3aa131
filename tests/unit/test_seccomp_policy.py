"""LXC seccomp policy parser: every syntax form, every error, and what the compiled filter holds."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lxctools.errors import ConfigError, KernelError
from lxctools.kernel import seccomp as kseccomp
from lxctools.runtime.seccomp_policy import (
    ALLOW, DEFAULT_POLICY, KILL, ActionKind, ArgFilter, CmpOp, SeccompAction, SeccompPlan,
    SeccompRule, compile_program, default_plan, errno_action, export_pfc, load_policy, parse_policy,
)

# LXC 5's /usr/share/lxc/config/common.seccomp, verbatim (note the trailing comment).
LXC_COMMON_SECCOMP = """\
2
denylist
reject_force_umount  # comment this to allow umount -f;  not recommended
[all]
kexec_load errno 1
open_by_handle_at errno 1
init_module errno 1
finit_module errno 1
delete_module errno 1
"""

FORCE_UMOUNT = SeccompRule("umount2", errno_action(13), (ArgFilter(1, 1, CmpOp.MASKED_EQ, 1),))


def v2(*lines: str, header: str = "denylist") -> str:
    return "\n".join(("2", header, *lines)) + "\n"


def rules(text: str) -> tuple[SeccompRule, ...]:
    return parse_policy(text, "t.seccomp").rules


def error_of(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_policy(text, "t.seccomp")
    return str(info.value)


# --- the shipped texts -------------------------------------------------------------------------

def test_lxc_common_seccomp_parses_like_lxc() -> None:
    plan = parse_policy(LXC_COMMON_SECCOMP, "common.seccomp")
    assert plan.default_action == ALLOW
    assert plan.rules == (
        FORCE_UMOUNT,
        *(SeccompRule(name, errno_action(1)) for name in
          ("kexec_load", "open_by_handle_at", "init_module", "finit_module", "delete_module")),
    )


def test_default_policy_is_lxc_common_plus_hardening() -> None:
    plan = default_plan()
    lxc = set(parse_policy(LXC_COMMON_SECCOMP).rules)
    assert lxc <= set(plan.rules)
    names = {rule.syscall for rule in plan.rules}
    assert {"kexec_file_load", "bpf", "perf_event_open", "keyctl", "add_key", "request_key",
            "userfaultfd"} <= names
    assert "mount" not in names and "reboot" not in names
    # Everything denied answers EPERM except LXC's force-umount rule (EACCES), nothing kills.
    for rule in plan.rules:
        expected = 13 if rule == FORCE_UMOUNT else 1
        assert rule.action == errno_action(expected), rule
        assert rule.arch == "all"
    assert plan.default_action == ALLOW
    assert DEFAULT_POLICY.startswith("2\ndenylist\n")


def test_shipped_common_seccomp_is_the_default_policy() -> None:
    # configs/common.seccomp is what every default container loads (common.toml names it), so
    # it must deny everything the built-in default does. It used to carry only LXC's five
    # rules: keyctl, bpf, perf_event_open, userfaultfd... reached the host kernel.
    from pathlib import Path
    shipped = Path(__file__).resolve().parents[2] / "configs" / "common.seccomp"
    plan = load_policy(str(shipped))
    assert plan.default_action == default_plan().default_action
    assert set(plan.rules) == set(default_plan().rules)


# --- version 1 ---------------------------------------------------------------------------------

def test_v1_allowlist_of_numbers() -> None:
    plan = parse_policy("1\nallowlist\n0\n1\n# comment\n\n60\n", "v1")
    assert plan.default_action == KILL
    assert [(r.syscall, r.action, r.arch) for r in plan.rules] == [
        (0, ALLOW, "native"), (1, ALLOW, "native"), (60, ALLOW, "native")]
    assert [r.line for r in plan.rules] == [3, 4, 7]


def test_v1_accepts_whitelist_spelling() -> None:
    assert parse_policy("1\nwhitelist\n1\n").rules[0].syscall == 1


@pytest.mark.parametrize("text, where, words", [
    ("1\ndenylist\n1\n", ":2:", "allowlist"),
    ("1\nallowlist\nread\n", ":3:", "syscall number"),
    ("1\nallowlist\n-1\n", ":3:", "syscall number"),
    ("1\nallowlist\n1 2\n", ":3:", "syscall number"),
])
def test_v1_errors(text: str, where: str, words: str) -> None:
    message = error_of(text)
    assert f"t.seccomp{where}" in message and words in message


# --- headers -----------------------------------------------------------------------------------

@pytest.mark.parametrize("header, default, rule_action", [
    ("denylist", ALLOW, KILL),
    ("blacklist", ALLOW, KILL),
    ("allowlist", KILL, ALLOW),
    ("whitelist", KILL, ALLOW),
    ("allowlist errno 38", errno_action(38), ALLOW),
    ("denylist trap", SeccompAction(ActionKind.TRAP), KILL),
    ("whitelist log", SeccompAction(ActionKind.LOG), ALLOW),
    ("denylist  kill", KILL, KILL),
])
def test_v2_header_sets_defaults(header: str, default: SeccompAction, rule_action: SeccompAction) -> None:
    plan = parse_policy(v2("getpid", header=header))
    assert plan.default_action == default
    assert plan.rules[0].action == rule_action


@pytest.mark.parametrize("text, where, words", [
    ("", ":1:", "version"),
    ("\n", ":1:", "version"),
    ("3\ndenylist\n", ":1:", "version"),
    ("two\ndenylist\n", ":1:", "version"),
    ("2\n", ":2:", "policy type"),
    ("2\n\n", ":2:", "policy type"),
    ("2\ngraylist\n", ":2:", "bad policy type"),
    ("2\ndenylist debug\n", ":2:", "debug"),
    ("2\ndenylist frobnicate\n", ":2:", "unrecognized"),
    ("2\ndenylist errno\n", ":2:", "errno"),
    ("2\ndenylist errno 1 extra\n", ":2:", "default action"),
])
def test_header_errors(text: str, where: str, words: str) -> None:
    message = error_of(text)
    assert f"t.seccomp{where}" in message and words in message


# --- rules -------------------------------------------------------------------------------------

@pytest.mark.parametrize("line, action", [
    ("mknod", KILL),
    ("mknod kill", KILL),
    ("mknod allow", ALLOW),
    ("mknod trap", SeccompAction(ActionKind.TRAP)),
    ("mknod notify", SeccompAction(ActionKind.NOTIFY)),
    ("mknod log", SeccompAction(ActionKind.LOG)),
    ("mknod errno 1", errno_action(1)),
    ("mknod errno 0", errno_action(0)),
    ("mknod   errno   4095", errno_action(4095)),
    ("mknod errno 38 # not here", errno_action(38)),
    ("\tmknod errno 2", errno_action(2)),
])
def test_rule_actions(line: str, action: SeccompAction) -> None:
    assert rules(v2(line)) == (SeccompRule("mknod", action),)


def test_comments_and_blank_lines_are_skipped() -> None:
    assert rules(v2("# a comment", "", "   ", "  # indented comment", "getpid errno 1")) == (
        SeccompRule("getpid", errno_action(1)),)


def test_rule_lines_are_recorded_for_messages() -> None:
    assert [r.line for r in rules(v2("# c", "getpid", "", "getppid"))] == [4, 6]


def test_arch_sections() -> None:
    text = v2("a1", "[x86_64]", "a2", "[X86]", "a3", "[arm64]", "a4", "[ALL]", "a5", "[ x32 ]", "a6",
              "[mipsel64n32]", "a7", "[s390x]", "a8")
    assert [(r.syscall, r.arch) for r in rules(text)] == [
        ("a1", "all"), ("a2", "x86_64"), ("a3", "x86"), ("a4", "aarch64"), ("a5", "all"),
        ("a6", "x32"), ("a7", "mipsel64n32"), ("a8", "s390x")]


def test_reject_force_umount_follows_section() -> None:
    assert rules(v2("[x86]", "reject_force_umount"))[0].arch == "x86"


@pytest.mark.parametrize("args, expected", [
    ("[0,1,==]", ArgFilter(0, 1, CmpOp.EQ)),
    ("[1,2,!=]", ArgFilter(1, 2, CmpOp.NE)),
    ("[2,3,<]", ArgFilter(2, 3, CmpOp.LT)),
    ("[3,4,<=]", ArgFilter(3, 4, CmpOp.LE)),
    ("[4,5,>]", ArgFilter(4, 5, CmpOp.GT)),
    ("[5,6,>=]", ArgFilter(5, 6, CmpOp.GE)),
    ("[1,2,&=,6]", ArgFilter(1, 2, CmpOp.MASKED_EQ, 6)),
    ("[0,0xffffffff,SCMP_CMP_EQ]", ArgFilter(0, 0xFFFFFFFF, CmpOp.EQ)),
    ("[0,010,SCMP_CMP_NE]", ArgFilter(0, 8, CmpOp.NE)),
    ("[0,1,SCMP_CMP_LT]", ArgFilter(0, 1, CmpOp.LT)),
    ("[0,1,SCMP_CMP_LE]", ArgFilter(0, 1, CmpOp.LE)),
    ("[0,1,SCMP_CMP_GT]", ArgFilter(0, 1, CmpOp.GT)),
    ("[0,1,SCMP_CMP_GE]", ArgFilter(0, 1, CmpOp.GE)),
    ("[1,0x2,SCMP_CMP_MASKED_EQ,0x2]", ArgFilter(1, 2, CmpOp.MASKED_EQ, 2)),
    ("[ 0 , 18446744073709551615 , == ]", ArgFilter(0, 2**64 - 1, CmpOp.EQ)),
    ("[0,1,==,7]", ArgFilter(0, 1, CmpOp.EQ, 7)),  # a mask on other ops is ignored, as in LXC
])
def test_argument_filters(args: str, expected: ArgFilter) -> None:
    assert rules(v2(f"personality errno 22 {args}")) == (
        SeccompRule("personality", errno_action(22), (expected,)),)


def test_several_filters_and_no_action() -> None:
    (rule,) = rules(v2("clone [0,1,==] [1,2,!=]"))
    assert rule.action == KILL
    assert rule.args == (ArgFilter(0, 1, CmpOp.EQ), ArgFilter(1, 2, CmpOp.NE))


@pytest.mark.parametrize("line, words", [
    ("[sparc]", "unsupported architecture"),
    ("[x86", "unsupported architecture"),
    ("[]", "unsupported architecture"),
    ("open-at", "bad syscall name"),
    ("9open", "bad syscall name"),
    ("open frobnicate", "unrecognized action"),
    ("open errno", "errno"),
    ("open errno x", "errno"),
    ("open errno -1", "errno"),
    ("open errno 4096", "out of range"),
    ("open kill now", "unexpected"),
    ("open errno 1 2", "unexpected"),
    ("open kill [0,1]", "bad argument filter"),
    ("open kill [0,1,==,1,1]", "bad argument filter"),
    ("open kill [6,1,==]", "out of range"),
    ("open kill [x,1,==]", "argument index"),
    ("open kill [0,-1,==]", "argument value"),
    ("open kill [0,08,==]", "argument value"),
    ("open kill [0,18446744073709551616,==]", "64 bits"),
    ("open kill [0,1,=]", "unknown comparison"),
    ("open kill [0,1,SCMP_CMP_FOO]", "unknown comparison"),
    ("open kill [0,1,&=]", "needs a mask"),
    ("open kill [0,1,&=,zz]", "argument mask"),
    ("open kill [0,1,==] junk", "bad argument filter"),
    ("open kill [0,1,==] junk [1,1,==]", "unexpected"),
    ("open kill [0,1,==", "bad argument filter"),
    ("open kill " + " ".join(["[0,1,==]"] * 7), "at most 6"),
    ("reject_force_umount errno 1", "no arguments"),
])
def test_rule_errors_name_file_and_line(line: str, words: str) -> None:
    message = error_of(v2("getpid", line))
    assert message.startswith("t.seccomp:4: "), message
    assert words in message, message


@given(st.text(max_size=300))
@settings(max_examples=400, deadline=None)
def test_garbage_raises_only_config_error(text: str) -> None:
    try:
        plan = parse_policy(text, "fuzz")
    except ConfigError as exc:
        assert str(exc).startswith("fuzz:")
    else:
        assert isinstance(plan, SeccompPlan)


_line = st.one_of(
    st.sampled_from(["[all]", "[x86]", "[arm64]", "reject_force_umount", "# c", "", "[0,1,==]"]),
    st.from_regex(r"[a-z_]{1,12}( (kill|allow|trap|notify|log|errno [0-9]{1,4}))?( \[[0-6],[0-9x]{1,4},(==|!=|<|<=|>|>=|&=)(,[0-9]{1,3})?\]){0,7}", fullmatch=True),
    st.text(alphabet="[],#0123456789abcdefx= &<>!\t", max_size=30),
)


@given(st.sampled_from(["1\nallowlist", "2\ndenylist", "2\nallowlist errno 1", "2\nwhitelist"]),
       st.lists(_line, max_size=12))
@settings(max_examples=400, deadline=None)
def test_near_valid_policies_raise_only_config_error(header: str, lines: list[str]) -> None:
    try:
        parse_policy("\n".join([header, *lines]), "fuzz")
    except ConfigError as exc:
        assert str(exc).startswith("fuzz:")


def test_load_policy_reads_file_and_names_it(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "p.seccomp"
    path.write_text(v2("getpid errno 1"))
    assert load_policy(path).source == str(path)
    path.write_text(v2("getpid errno"))
    with pytest.raises(ConfigError, match=rf"^{path}:3: "):
        load_policy(path)
    with pytest.raises(ConfigError, match="missing.seccomp"):
        load_policy(tmp_path / "missing.seccomp")


# --- compiling (libseccomp, no kernel load) -----------------------------------------------------

needs_libseccomp = pytest.mark.skipif(not kseccomp.available(), reason="libseccomp.so.2 not installed")
on_x86_64 = pytest.mark.skipif(not kseccomp.available() or kseccomp.seccomp_arch_native()
                               != kseccomp.SCMP_ARCHES["x86_64"], reason="x86_64 host only")


def _sections(pfc: str) -> dict[str, str]:
    """Split libseccomp pseudo code into {arch name: its block}."""
    blocks: dict[str, str] = {}
    current = ""
    for line in pfc.splitlines():
        if line.startswith("# filter for arch "):
            current = line.split()[4]
            blocks[current] = ""
        elif current:
            blocks[current] += line + "\n"
    return blocks


@on_x86_64
def test_compiled_default_covers_every_x86_abi() -> None:
    blocks = _sections(export_pfc(default_plan()))
    assert set(blocks) == {"x86_64", "x86", "x32"}
    for block in blocks.values():
        assert '"kexec_load"' in block and '"init_module"' in block and "ERRNO(1)" in block
    assert '"umount2"' in blocks["x86_64"] and "ERRNO(13)" in blocks["x86_64"]


@on_x86_64
def test_arch_section_applies_to_that_arch_only() -> None:
    blocks = _sections(export_pfc(parse_policy(v2("[x86]", "getpid errno 5", "[all]", "getppid errno 6"))))
    assert '"getpid"' in blocks["x86"] and '"getpid"' not in blocks["x86_64"]
    assert all('"getppid"' in block for block in blocks.values())


@on_x86_64
def test_foreign_arch_sections_are_ignored_here() -> None:
    pfc = export_pfc(parse_policy(v2("[arm64]", "getpid errno 5")))
    assert '"getpid"' not in pfc


@needs_libseccomp
def test_unknown_syscalls_are_skipped_with_a_debug_log(tmp_path, monkeypatch) -> None:
    from lxctools.log import LEVELS, log
    logfile = tmp_path / "log"
    monkeypatch.setattr(log, "fd", os.open(logfile, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC))
    monkeypatch.setattr(log, "level", LEVELS["DEBUG"])
    try:
        pfc = export_pfc(parse_policy(v2("no_such_syscall_xyz errno 1", "getpid errno 1"), "p"))
    finally:
        os.close(log.fd)
    assert '"getpid"' in pfc
    lines = logfile.read_text().splitlines()
    assert any("DEBUG" in line and "seccomp - p:3: syscall no_such_syscall_xyz is unknown" in line for line in lines)


@needs_libseccomp
def test_rules_equal_to_the_default_are_dropped() -> None:
    pfc = export_pfc(parse_policy(v2("getpid allow")))
    assert '"getpid"' not in pfc


@on_x86_64
def test_argument_filter_compiles_to_masked_compare() -> None:
    pfc = export_pfc(parse_policy(v2("personality errno 22 [0,0xffffffff,==]", "umount2 errno 1 [1,2,&=,6]")))
    x86_64 = _sections(pfc)["x86_64"]
    assert "$a0.lo32 == 4294967295" in x86_64 and "ERRNO(22)" in x86_64
    assert "$a1.lo32 & 0x00000006 == 2" in x86_64


@on_x86_64
def test_v1_numbers_filter_native_only() -> None:
    blocks = _sections(export_pfc(parse_policy("1\nallowlist\n39\n")))
    assert "$syscall == 39" in blocks["x86_64"] and "ALLOW" in blocks["x86_64"]
    assert "$syscall" not in blocks["x86"]


# --- programs compiled by the supervisor ---------------------------------------------------------

@needs_libseccomp
def test_a_policy_is_compiled_once_per_content(monkeypatch: pytest.MonkeyPatch) -> None:
    from lxctools.runtime import seccomp_policy
    monkeypatch.setattr(seccomp_policy, "_PROGRAMS", {})
    compiled = []
    real = seccomp_policy.compile_filter
    monkeypatch.setattr(seccomp_policy, "compile_filter", lambda plan: compiled.append(plan) or real(plan))
    first = compile_program(parse_policy(v2("getpid errno 5"), "a.seccomp"))
    again = compile_program(parse_policy(v2("", "getpid errno 5"), "a.seccomp"))  # read anew, same rules
    other = compile_program(parse_policy(v2("getpid errno 6"), "a.seccomp"))  # the file changed
    assert first == again != other
    assert len(compiled) == 2
    count, rest = divmod(len(first), 8)
    assert rest == 0 and 0 < count <= 4096


def test_the_program_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from lxctools.runtime import seccomp_policy
    monkeypatch.setattr(seccomp_policy, "_PROGRAMS", {})
    monkeypatch.setattr(seccomp_policy, "compile_filter", lambda plan: 1)
    monkeypatch.setattr(kseccomp, "export_program", lambda ctx: b"\0" * 8)
    monkeypatch.setattr(kseccomp, "seccomp_release", lambda ctx: None)
    for number in range(1, 41):
        compile_program(parse_policy(v2(f"getpid errno {number}")))
    assert len(seccomp_policy._PROGRAMS) == seccomp_policy._PROGRAMS_KEPT


@pytest.mark.parametrize("program", [b"", b"\x06\x00\x00\x00", b"\0" * 8 * 4097])
def test_load_program_refuses_what_is_not_a_bpf_program(program: bytes) -> None:
    # Refused before any syscall: this process stays unconfined.
    with pytest.raises(KernelError, match="not a BPF program"):
        kseccomp.load_program(program)
