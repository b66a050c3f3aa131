"""Security plans from config values, and the order apply asks the kernel for things (recorded)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lxctools.errors import ConfigError, StartError, UsageError
from lxctools.kernel import caps
from lxctools.runtime import security
from lxctools.runtime.seccomp_policy import DEFAULT_SOURCE, default_plan, errno_action
from lxctools.runtime.security import DEFAULT_CAP_DROP, SecurityPlan, drop_for_attach, plan_security

ALL_CAPS = frozenset(range(caps.CAP_LAST_KNOWN + 1))


def n(*names: str) -> frozenset[int]:
    return frozenset(caps.CAP_NUMBERS[name] for name in names)


# --- capability table ---------------------------------------------------------------------------

def test_cap_table_matches_the_kernel_header() -> None:
    assert caps.CAP_LAST_KNOWN == 40
    assert caps.CAP_NUMBERS["chown"] == 0
    assert caps.CAP_NUMBERS["sys_admin"] == 21
    assert caps.CAP_NUMBERS["mknod"] == 27
    assert caps.CAP_NUMBERS["mac_admin"] == 33
    assert caps.CAP_NUMBERS["bpf"] == 39
    assert caps.CAP_NUMBERS["checkpoint_restore"] == 40


@pytest.mark.parametrize("spelling, number", [
    ("sys_admin", 21), ("SYS_ADMIN", 21), ("CAP_SYS_ADMIN", 21), ("cap_mknod", 27), ("27", 27),
    ("nope", None), ("41", None), ("", None),
])
def test_cap_number_spellings(spelling: str, number: int | None) -> None:
    assert caps.cap_number(spelling) == number


def test_cap_last_cap_reads_proc_and_falls_back(tmp_path: Path) -> None:
    (tmp_path / "sys/kernel").mkdir(parents=True)
    (tmp_path / "sys/kernel/cap_last_cap").write_text("42\n")
    assert caps.cap_last_cap(tmp_path) == 42
    assert caps.cap_last_cap(tmp_path / "missing") >= 40  # probed through PR_CAPBSET_READ


# --- plans --------------------------------------------------------------------------------------

def test_defaults_are_secure() -> None:
    plan = plan_security({})
    assert plan.cap_keep is None
    assert plan.cap_drop == DEFAULT_CAP_DROP
    assert {"sys_module", "sys_rawio", "sys_time", "mac_admin", "mac_override", "sys_admin"} <= plan.cap_drop
    assert not {"sys_boot", "mknod", "audit_write", "net_admin"} & plan.cap_drop
    assert plan.seccomp == default_plan() and plan.seccomp_profile == DEFAULT_SOURCE
    assert plan.no_new_privs is False and plan.seccomp_allow_nesting is False
    assert plan.kept_caps(40) == ALL_CAPS - n(*DEFAULT_CAP_DROP)


def test_default_drops_what_reaches_the_host_kernel_or_entering_processes() -> None:
    # sys_ptrace: would let root inside read and trace the supervisor's non-dumpable forks
    # that enter the container (pyl-attach, pyl-execute's init); bpf + perfmon: kernel tracing.
    assert {"sys_ptrace", "bpf", "perfmon"} <= DEFAULT_CAP_DROP


def test_common_toml_drops_the_same_capabilities_as_the_builtin_default() -> None:
    import tomllib
    common = tomllib.loads((Path(__file__).resolve().parents[2] / "configs" / "common.toml").read_text())
    assert set(" ".join(common["lxc"]["cap"]["drop"]).split()) == DEFAULT_CAP_DROP


def test_common_toml_keeps_the_host_console_out_of_the_device_allow_list() -> None:
    # c 5:1 opened through a node made with mknod is the host's system console; the
    # container's /dev/console is a pty (c 136:N).
    import tomllib
    common = tomllib.loads((Path(__file__).resolve().parents[2] / "configs" / "common.toml").read_text())
    for version in ("cgroup", "cgroup2"):
        allow = common["lxc"][version]["devices"]["allow"]
        assert not any(rule.split()[:2] == ["c", "5:1"] for rule in allow), allow
        assert "c 136:* rwm" in allow


def test_cap_drop_string_and_lines() -> None:
    assert plan_security({"lxc.cap.drop": "sys_module mac_admin"}).cap_drop == {"sys_module", "mac_admin"}
    plan = plan_security({"lxc.cap.drop": ["sys_module  mac_admin", "\tSYS_TIME", "CAP_MKNOD 17"]})
    assert plan.cap_drop == {"sys_module", "mac_admin", "sys_time", "mknod", "sys_rawio"}
    assert plan.kept_caps(40) == ALL_CAPS - n("sys_module", "mac_admin", "sys_time", "mknod", "sys_rawio")


def test_empty_cap_drop_clears_and_disables_the_default() -> None:
    assert plan_security({"lxc.cap.drop": ["sys_module", "", "mknod"]}).cap_drop == {"mknod"}
    plan = plan_security({"lxc.cap.drop": ["sys_module", ""]})
    assert plan.cap_drop == frozenset() and plan.kept_caps(40) == ALL_CAPS
    assert plan_security({"lxc.cap.drop": ""}).cap_drop == frozenset()


def test_cap_keep_allow_list() -> None:
    plan = plan_security({"lxc.cap.keep": ["chown setuid", "setgid"]})
    assert plan.cap_keep == {"chown", "setuid", "setgid"}
    assert plan.kept_caps(40) == n("chown", "setuid", "setgid")


def test_cap_keep_none_keeps_nothing_and_later_names_add() -> None:
    assert plan_security({"lxc.cap.keep": "none"}).kept_caps(40) == frozenset()
    assert plan_security({"lxc.cap.keep": ["chown", "none"]}).cap_keep == frozenset()
    assert plan_security({"lxc.cap.keep": ["chown", "none kill"]}).cap_keep == {"kill"}


def test_empty_cap_keep_clears_the_allow_list() -> None:
    plan = plan_security({"lxc.cap.keep": ["chown", ""]})
    assert plan.cap_keep is None and plan.cap_drop == frozenset()  # key given: no pyl default


def test_keep_and_drop_together_is_an_error() -> None:
    with pytest.raises(ConfigError, match="both"):
        plan_security({"lxc.cap.drop": "mknod", "lxc.cap.keep": "chown"})
    # A cleared drop list next to a keep list is fine (userns.conf then a keep list).
    assert plan_security({"lxc.cap.drop": "", "lxc.cap.keep": "chown"}).cap_keep == {"chown"}


@pytest.mark.parametrize("key", ["lxc.cap.drop", "lxc.cap.keep"])
def test_unknown_capability_names_the_key(key: str) -> None:
    with pytest.raises(ConfigError, match=rf"{key}: unknown capability 'sys_frob'"):
        plan_security({key: "chown sys_frob"})


def test_newer_kernel_caps_follow_lxc_semantics() -> None:
    # A kernel with caps beyond pyl's table: a drop list keeps them, a keep list drops them.
    assert {41, 42} <= plan_security({"lxc.cap.drop": "mknod"}).kept_caps(42)
    assert plan_security({"lxc.cap.keep": "chown"}).kept_caps(42) == n("chown")
    assert plan_security({}).kept_caps(38) == frozenset(range(39)) - n(*DEFAULT_CAP_DROP)


@pytest.mark.parametrize("value, expected", [("1", True), ("0", False), ("", False), (["1", "0"], False)])
def test_no_new_privs(value: str | list[str], expected: bool) -> None:
    assert plan_security({"lxc.no_new_privs": value}).no_new_privs is expected


@pytest.mark.parametrize("key", ["lxc.no_new_privs", "lxc.seccomp.allow_nesting"])
def test_flags_must_be_0_or_1(key: str) -> None:
    with pytest.raises(ConfigError, match=rf"{key}: expected 0 or 1"):
        plan_security({key: "yes"})


@pytest.mark.parametrize("value", ["none", ""])
def test_seccomp_can_be_turned_off(value: str) -> None:
    plan = plan_security({"lxc.seccomp.profile": value})
    assert plan.seccomp is None and plan.seccomp_profile is None


def test_seccomp_profile_file(tmp_path: Path) -> None:
    path = tmp_path / "mine.seccomp"
    path.write_text("2\ndenylist\nmknod errno 1\n")
    plan = plan_security({"lxc.seccomp.profile": str(path)})
    assert plan.seccomp_profile == str(path)
    assert plan.seccomp is not None and plan.seccomp.rules[0].action == errno_action(1)


def test_what_pyl_cannot_do_is_a_warning_for_the_user(tmp_path: Path) -> None:
    # They reach pyl-start's (and pyl-execute's) stderr through the start's reply; they used
    # to go to stdlib logging, which in the supervisor meant monitor.log or nowhere.
    assert plan_security({}).warnings == ()
    proxy = plan_security({"lxc.seccomp.notify.proxy": "unix:/run/proxy"})
    assert proxy.warnings == ("lxc.seccomp.notify.proxy is not supported by pyl; "
                              "seccomp notify rules fail with ENOSYS",)
    path = tmp_path / "notify.seccomp"
    path.write_text("2\ndenylist\nmknod notify\n")
    notify = plan_security({"lxc.seccomp.profile": str(path)})
    assert notify.warnings == (f"{path}: notify rules have no proxy in pyl; those syscalls fail with ENOSYS",)


def test_seccomp_profile_errors_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="missing.seccomp"):
        plan_security({"lxc.seccomp.profile": str(tmp_path / "missing.seccomp")})
    bad = tmp_path / "bad.seccomp"
    bad.write_text("2\ndenylist\nmknod errno\n")
    with pytest.raises(ConfigError, match=rf"{bad}:3:"):
        plan_security({"lxc.seccomp.profile": str(bad)})


def test_attach_rejects_unknown_elevated_names() -> None:
    with pytest.raises(UsageError, match="FROB"):
        drop_for_attach(plan_security({}), {"CAP", "frob"})


# --- apply order, against a recording double ------------------------------------------------------

class Recorder:
    def __init__(self, monkeypatch: pytest.MonkeyPatch, bounding: int = (1 << 41) - 1) -> None:
        self.calls: list[tuple] = []
        self.bounding = bounding
        self.sets = caps.CapSets(bounding, bounding, 0)
        m = monkeypatch
        m.setattr(caps, "cap_last_cap", lambda proc_root="/proc": 40)
        m.setattr(caps, "capbset_read", lambda cap: bool(self.bounding >> cap & 1))
        m.setattr(caps, "capbset_drop", self._drop)
        m.setattr(caps, "bounding_set", lambda last: self.bounding)
        m.setattr(caps, "cap_ambient_clear_all", lambda: self.calls.append(("ambient_clear",)))
        m.setattr(caps, "capget", lambda pid=0: self.sets)
        m.setattr(caps, "capset", self._capset)
        m.setattr(caps, "set_no_new_privs", lambda: self.calls.append(("nnp",)))
        m.setattr(security, "apply_seccomp",
                  lambda plan, program=None: self.calls.append(("seccomp", plan.source, program)))
        m.setattr(security, "seccomp_active", lambda proc_root="/proc": False)

    def _drop(self, cap: int) -> None:
        self.bounding &= ~(1 << cap)
        self.calls.append(("bset_drop", cap))

    def _capset(self, effective: int, permitted: int, inheritable: int) -> None:
        self.sets = caps.CapSets(effective, permitted, inheritable)
        self.calls.append(("capset", effective, permitted, inheritable))

    def kinds(self) -> list[str]:
        return [call[0] for call in self.calls]


def test_apply_order_when_sys_admin_is_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    rec = Recorder(monkeypatch)
    plan = plan_security({"lxc.cap.drop": "sys_admin mknod"})
    security.apply_security(plan)
    assert rec.kinds() == ["bset_drop", "bset_drop", "ambient_clear", "capset", "seccomp", "capset"]
    assert {call[1] for call in rec.calls if call[0] == "bset_drop"} == n("sys_admin", "mknod")
    keep = caps.mask_of(plan.kept_caps(40))
    first, last = [call for call in rec.calls if call[0] == "capset"]
    admin = 1 << caps.CAP_SYS_ADMIN
    assert first == ("capset", keep | admin, keep | admin, keep)  # still allowed to load the filter
    assert last == ("capset", keep, keep, keep)


def test_apply_with_no_new_privs_needs_no_sys_admin(monkeypatch: pytest.MonkeyPatch) -> None:
    rec = Recorder(monkeypatch)
    plan = plan_security({"lxc.cap.drop": "sys_admin", "lxc.no_new_privs": "1"})
    security.apply_security(plan)
    assert rec.kinds() == ["bset_drop", "ambient_clear", "capset", "nnp", "seccomp"]
    keep = caps.mask_of(plan.kept_caps(40))
    assert rec.calls[2] == ("capset", keep, keep, keep)


def test_apply_default_plan(monkeypatch: pytest.MonkeyPatch) -> None:
    rec = Recorder(monkeypatch)
    security.apply_security(plan_security({}))
    # sys_admin is dropped by default: it stays effective until the filter is loaded, then a
    # last capset under the filter removes it
    assert rec.kinds()[-4:] == ["ambient_clear", "capset", "seccomp", "capset"]
    assert {call[1] for call in rec.calls if call[0] == "bset_drop"} == n(*DEFAULT_CAP_DROP)


def test_inheritable_never_exceeds_what_the_kernel_allows(monkeypatch: pytest.MonkeyPatch) -> None:
    # The host bounding set lacks sys_resource: keeping it must not be asked for.
    rec = Recorder(monkeypatch, bounding=((1 << 41) - 1) & ~n_mask("sys_resource"))
    security.apply_security(plan_security({"lxc.seccomp.profile": "none"}))
    (capset,) = [call for call in rec.calls if call[0] == "capset"]
    assert not capset[3] & n_mask("sys_resource")


def n_mask(*names: str) -> int:
    return caps.mask_of(n(*names))


def test_the_bounding_set_is_read_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # 41 prctls per read in the container's init: the set after the drops follows from the one
    # read, and capset is asked for nothing outside it.
    rec = Recorder(monkeypatch, bounding=((1 << 41) - 1) & ~n_mask("sys_resource"))
    reads = []
    monkeypatch.setattr(caps, "bounding_set", lambda last: reads.append(last) or rec.bounding)
    plan = plan_security({"lxc.cap.drop": "sys_admin mknod"})
    security.apply_security(plan)
    assert reads == [40]
    assert {call[1] for call in rec.calls if call[0] == "bset_drop"} == n("sys_admin", "mknod")
    keep = caps.mask_of(plan.kept_caps(40)) & ~n_mask("sys_resource")
    assert [call[3] for call in rec.calls if call[0] == "capset"] == [keep, keep]


def test_a_compiled_plan_hands_its_program_to_the_loader(monkeypatch: pytest.MonkeyPatch) -> None:
    rec = Recorder(monkeypatch)
    program = b"\x06\x00\x00\x00\x00\x00\xff\x7f"  # ret ALLOW
    monkeypatch.setattr("lxctools.runtime.seccomp_policy.compile_program", lambda plan: program)
    plan = security.compiled(plan_security({}))
    assert plan.seccomp_program == program
    assert security.compiled(plan) is plan
    security.apply_security(plan)
    assert [call for call in rec.calls if call[0] == "seccomp"] == [("seccomp", plan.seccomp_profile, program)]
    none = plan_security({"lxc.seccomp.profile": "none"})
    assert security.compiled(none) is none


def test_already_confined_skips_seccomp_unless_nesting(monkeypatch: pytest.MonkeyPatch) -> None:
    rec = Recorder(monkeypatch)
    monkeypatch.setattr(security, "seccomp_active", lambda proc_root="/proc": True)
    security.apply_security(plan_security({}))
    assert "seccomp" not in rec.kinds()
    security.apply_security(plan_security({"lxc.seccomp.allow_nesting": "1"}))
    assert "seccomp" in rec.kinds()


def test_attach_with_elevated_caps_only_applies_seccomp(monkeypatch: pytest.MonkeyPatch) -> None:
    rec = Recorder(monkeypatch)
    drop_for_attach(plan_security({"lxc.no_new_privs": "1"}), {"cap"})
    assert rec.kinds() == ["nnp", "seccomp"]


def test_attach_without_elevation_drops_like_init(monkeypatch: pytest.MonkeyPatch) -> None:
    rec = Recorder(monkeypatch)
    drop_for_attach(plan_security({"lxc.cap.keep": "chown"}), set())
    assert rec.kinds()[-1] == "capset" and rec.calls[-1][2] == n_mask("chown")


def test_kernel_refusal_becomes_start_error(monkeypatch: pytest.MonkeyPatch) -> None:
    Recorder(monkeypatch)

    def refuse(cap: int) -> None:
        from lxctools.errors import PermissionDeniedError
        raise PermissionDeniedError("prctl(24): Operation not permitted")

    monkeypatch.setattr(caps, "capbset_drop", refuse)
    with pytest.raises(StartError, match="cannot drop capabilities"):
        security.apply_security(plan_security({}))


def test_seccomp_status_parsing(tmp_path: Path) -> None:
    (tmp_path / "self").mkdir()
    status = tmp_path / "self/status"
    status.write_text("Name:\tx\nSeccomp:\t2\nSeccomp_filters:\t1\n")
    assert security.seccomp_active(tmp_path)
    status.write_text("Name:\tx\nSeccomp:\t0\n")
    assert not security.seccomp_active(tmp_path)
    assert not security.seccomp_active(tmp_path / "missing")


def test_plan_is_frozen() -> None:
    plan = plan_security({})
    assert isinstance(plan, SecurityPlan)
    with pytest.raises(AttributeError):
        plan.no_new_privs = True  # type: ignore[misc]


# --- the caller's terminal and pyl-attach -----------------------------------------------------------

def test_a_callers_terminal_reaches_the_command_only_through_a_pipe() -> None:
    # Root in the container could reopen a terminal it is handed (/proc/PID/fd/N) and keep it
    # after pyl-attach returns; pipes relayed by the attach child leave it nothing to keep.
    import os
    import pty
    import select
    from lxctools.runtime.attach import relay_until_exit, shield_terminals
    master, slave = pty.openpty()
    stdin_r, stdin_w = os.pipe()
    stdio, relays = shield_terminals((stdin_r, slave, slave))
    try:
        assert stdio[0] == stdin_r                       # not a terminal: passed as it is
        assert not os.isatty(stdio[1]) and not os.isatty(stdio[2])
        assert [relay.index for relay in relays] == [1, 2]
        child = os.fork()
        if child == 0:
            os.write(stdio[1], b"out;")
            os.write(stdio[2], b"err;")
            os._exit(3)
        for fd in stdio[1:]:
            os.close(fd)
        status = relay_until_exit(relays, child)
        assert os.waitstatus_to_exitcode(status) == 3
        received = b""
        while select.select([master], [], [], 0.2)[0]:
            received += os.read(master, 1024)
        assert sorted(received.split(b";")) == [b"", b"err", b"out"]
    finally:
        for fd in (master, slave, stdin_r, stdin_w):
            os.close(fd)
