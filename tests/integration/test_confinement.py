"""Confinement against the real kernel: every test confines a forked child, never pytest itself.

The child applies a plan, tries what an attacker in a root container would, and reports back
through a pipe as JSON. Probes use harmless arguments (bad flags, NULL pointers), so even a
broken filter could not unload a kexec kernel or touch a module.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from lxctools.kernel import seccomp as kseccomp
from lxctools.runtime.seccomp_policy import apply_seccomp, compile_program, parse_policy
from lxctools.runtime.security import apply_security, compiled, drop_for_attach, plan_security

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(not kseccomp.available(), reason="libseccomp.so.2 not installed"),
    pytest.mark.skipif(os.uname().machine != "x86_64", reason="syscall numbers below are x86_64"),
    pytest.mark.skipif(not Path("/proc/self/status").read_text().count("Seccomp:"),
                       reason="kernel without seccomp"),
]

BUSYBOX = "/bin/busybox"
EPERM, EACCES, EINVAL, ENOSYS = 1, 13, 22, 38
MNT_FORCE = 1

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long

# x86_64 numbers, each with arguments that fail harmlessly if the call gets through.
PROBES: dict[str, tuple[int, ...]] = {
    "init_module": (175, 0, 0, 0),
    "finit_module": (313, -1, 0, 0),
    "delete_module": (176, 0, 0o4000),
    "kexec_load": (246, 0, 0, 0, 0xFFFF0000),
    "kexec_file_load": (320, -1, -1, 0, 0, 0xFFFF0000),
    "open_by_handle_at": (304, -1, 0, 0),
    "bpf": (321, 0xFFFF, 0, 0),
    "perf_event_open": (298, 0, 0, -1, -1, 0),
    "keyctl": (250, 0xFFFF, 0, 0),
    "add_key": (248, 0, 0, 0, 0, 0),
    "request_key": (249, 0, 0, 0, 0),
    "userfaultfd": (323, 0xFFFFFFFF),
}


def raw_syscall(number: int, *args: int) -> int:
    """errno of the call (0 on success)."""
    ctypes.set_errno(0)
    result = _libc.syscall(ctypes.c_long(number), *(ctypes.c_long(arg) for arg in args))
    return ctypes.get_errno() if result == -1 else 0


def run_in_child(body: Callable[[], object]) -> tuple[int, object]:
    """Run BODY in a forked child; return (wait status, BODY's JSON result or {'error': ...})."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_fd)
            try:
                payload = json.dumps({"result": body()})
            except BaseException as exc:  # noqa: BLE001 - report everything to the parent
                payload = json.dumps({"error": f"{type(exc).__name__}: {exc}"})
            os.write(write_fd, payload.encode())
        finally:
            os._exit(0)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        data = pipe.read()
    _, status = os.waitpid(pid, 0)
    reply = json.loads(data) if data else None
    if isinstance(reply, dict) and "error" in reply:
        pytest.fail(f"child failed: {reply['error']}")
    return status, reply["result"] if reply else None


@pytest.fixture(params=["child", "parent"])
def loader(request: pytest.FixtureRequest) -> str:
    """Where a filter is compiled: in the confined child (what pyl does when no program comes
    along), or in the parent, as the supervisor does before it forks; the child installs it
    with seccomp(2) either way."""
    return request.param


def prepared(values: dict, loader: str):  # noqa: ANN201 - a SecurityPlan
    plan = plan_security(values)
    return compiled(plan) if loader == "parent" else plan


def seccomp_loader(plan, loader: str) -> Callable[[], None]:  # noqa: ANN001 - a SeccompPlan
    program = compile_program(plan) if loader == "parent" else None
    return lambda: apply_seccomp(plan, program)


def status_fields() -> dict[str, str]:
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return fields


def cap_mask(fields: dict[str, str], key: str) -> int:
    return int(fields[key], 16)


def exec_busybox(plan_values: dict, script: str, loader: str = "child") -> tuple[int, str]:
    """Fork, confine with the plan, exec busybox sh -c SCRIPT; return (exit status, stdout)."""
    plan = prepared(plan_values, loader)
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_fd)
            os.dup2(write_fd, 1)
            apply_security(plan)
            os.execv(BUSYBOX, ["busybox", "sh", "-c", script])
        except BaseException as exc:  # noqa: BLE001
            os.write(2, f"child: {exc}\n".encode())
        finally:
            os._exit(127)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        out = pipe.read().decode()
    _, status = os.waitpid(pid, 0)
    return status, out


# --- the default policy ---------------------------------------------------------------------------

def test_baseline_probes_are_not_eperm() -> None:
    """Without a filter none of the probes fails with EPERM, so EPERM below is the filter's."""
    _, result = run_in_child(lambda: {name: raw_syscall(*args) for name, args in PROBES.items()})
    assert all(err not in (0, EPERM) for err in result.values()), result


def test_default_plan_denies_host_reaching_calls_with_eperm(loader: str) -> None:
    plan = prepared({}, loader)

    def body() -> dict[str, int]:
        apply_security(plan)
        return {name: raw_syscall(*args) for name, args in PROBES.items()}

    status, result = run_in_child(body)
    assert os.WIFEXITED(status)
    assert result == {name: EPERM for name in PROBES}


def test_default_plan_rejects_forced_umount_with_eacces(loader: str) -> None:
    plan = prepared({}, loader)

    def body() -> list[int]:
        apply_security(plan)
        path = b"/nonexistent-pyl-mountpoint"
        return [raw_syscall(166, ctypes.cast(ctypes.c_char_p(path), ctypes.c_void_p).value, MNT_FORCE),
                raw_syscall(166, ctypes.cast(ctypes.c_char_p(path), ctypes.c_void_p).value, 0)]

    _, (forced, plain) = run_in_child(body)
    assert forced == EACCES
    assert plain != EACCES  # ENOENT: a plain umount2 still reaches the kernel


def test_default_plan_bounding_and_effective_sets(loader: str) -> None:
    plan = prepared({}, loader)

    def body() -> dict[str, str]:
        apply_security(plan)
        return status_fields()

    _, fields = run_in_child(body)
    sys_module = 1 << 16
    for key in ("CapBnd", "CapEff", "CapPrm", "CapInh"):
        assert not cap_mask(fields, key) & sys_module, key
    assert cap_mask(fields, "CapAmb") == 0
    assert fields["Seccomp"] == "2"
    # sys_admin dropped by default (no AppArmor to fence remounts), after the filter was loaded
    assert not cap_mask(fields, "CapEff") & 1 << 21
    assert not cap_mask(fields, "CapBnd") & 1 << 21


def test_busybox_runs_under_the_default_plan_with_root_semantics(loader: str) -> None:
    status, out = exec_busybox({}, "busybox true && grep -E '^(Cap(Bnd|Eff|Prm)|Seccomp):' /proc/self/status",
                               loader)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, out
    fields = dict(line.split(":\t") for line in out.strip().splitlines())
    assert fields["Seccomp"] == "2"
    # uid 0 after execve: permitted = effective = bounding = the kept set.
    assert fields["CapEff"] == fields["CapPrm"] == fields["CapBnd"]
    assert not int(fields["CapBnd"], 16) & (1 << 16 | 1 << 17 | 1 << 25)  # sys_module/rawio/time


def test_cap_keep_none_leaves_root_without_capabilities() -> None:
    status, out = exec_busybox({"lxc.cap.keep": "none", "lxc.seccomp.profile": "none"},
                               "grep -E '^Cap(Bnd|Eff)' /proc/self/status")
    assert os.WEXITSTATUS(status) == 0
    assert all(line.endswith("0000000000000000") for line in out.strip().splitlines()), out


def test_no_new_privs_is_set_when_asked(loader: str) -> None:
    status, out = exec_busybox({"lxc.no_new_privs": "1", "lxc.cap.drop": "sys_admin"},
                               "grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status", loader)
    assert os.WEXITSTATUS(status) == 0
    assert "NoNewPrivs:\t1" in out and "Seccomp:\t2" in out


def test_sys_admin_dropped_after_loading_the_filter(loader: str) -> None:
    plan = prepared({"lxc.cap.drop": "sys_admin"}, loader)

    def body() -> dict[str, str]:
        apply_security(plan)
        return status_fields()

    _, fields = run_in_child(body)
    assert fields["Seccomp"] == "2" and fields["NoNewPrivs"] == "0"
    for key in ("CapBnd", "CapEff", "CapPrm"):
        assert not cap_mask(fields, key) & 1 << 21, key


# --- capabilities: mknod -----------------------------------------------------------------------------

def _mknod_block(path: Path) -> int:
    try:
        os.mknod(path, stat.S_IFBLK | 0o600, os.makedev(7, 250))
    except OSError as exc:
        return exc.errno or -1
    os.unlink(path)
    return 0


def test_dropping_mknod_refuses_block_devices(tmp_path: Path) -> None:
    node = tmp_path / "blk"

    def body() -> int:
        apply_security(plan_security({"lxc.cap.drop": "mknod", "lxc.seccomp.profile": "none"}))
        return _mknod_block(node)

    _, err = run_in_child(body)
    assert err == EPERM
    assert not node.exists()


def test_default_plan_keeps_mknod(tmp_path: Path) -> None:
    node = tmp_path / "blk"

    def body() -> int:
        apply_security(plan_security({}))
        return _mknod_block(node)

    _, err = run_in_child(body)
    assert err == 0  # the device cgroup, not the capability, limits which nodes are usable
    assert not node.exists()


# --- policies ------------------------------------------------------------------------------------------

def test_argument_filter_denies_only_the_matching_value(loader: str) -> None:
    load = seccomp_loader(parse_policy("2\ndenylist\npersonality errno 22 [0,0xffffffff,==]\n", "args"), loader)

    def body() -> list[int]:
        load()
        return [raw_syscall(135, 0xFFFFFFFF), raw_syscall(135, 0)]

    _, (query, set_linux) = run_in_child(body)
    assert query == EINVAL
    assert set_linux == 0


def test_notify_rules_fail_with_enosys_without_a_proxy(loader: str) -> None:
    # No notify proxy in pyl: the filter is loaded without a listener, so the kernel answers
    # ENOSYS.
    load = seccomp_loader(parse_policy("2\ndenylist\nuname notify\n", "notify"), loader)

    def body() -> list[int]:
        load()
        return [raw_syscall(63, 0), raw_syscall(39)]

    _, (uname, getpid) = run_in_child(body)
    assert uname == ENOSYS
    assert getpid == 0


def test_v1_allow_list_kills_everything_else(loader: str) -> None:
    # Enough for a Python child to report and exit: read write close mmap mprotect munmap brk
    # rt_sigaction rt_sigprocmask rt_sigreturn madvise getpid exit futex getrandom exit_group.
    allowed = [0, 1, 3, 9, 10, 11, 12, 13, 14, 15, 28, 39, 60, 202, 318, 231]
    load = seccomp_loader(parse_policy("1\nallowlist\n" + "\n".join(map(str, allowed)) + "\n", "v1"), loader)
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_fd)
            load()
            os.write(write_fd, b"loaded %d\n" % raw_syscall(39))
            raw_syscall(110)  # getppid: not listed -> SIGSYS, the process dies here
            os.write(write_fd, b"survived\n")
        finally:
            os._exit(0)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        out = pipe.read()
    _, status = os.waitpid(pid, 0)
    assert out == b"loaded 0\n"
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGSYS


def test_x32_and_i386_entry_points_are_filtered_too(loader: str) -> None:
    plan = prepared({}, loader)

    def body() -> list[int]:
        apply_security(plan)
        x32_init_module = 0x40000000 | 175
        x32_kexec_load = 0x40000000 | 528
        return [raw_syscall(x32_init_module, 0, 0, 0), raw_syscall(x32_kexec_load, 0, 0, 0, 0xFFFF0000)]

    _, errors = run_in_child(body)
    assert errors == [EPERM, EPERM]


def test_attach_with_elevated_caps_keeps_them_but_still_filters(loader: str) -> None:
    plan = prepared({}, loader)

    def body() -> dict[str, object]:
        before = status_fields()
        drop_for_attach(plan, {"CAP"})
        after = status_fields()
        return {"same": before["CapBnd"] == after["CapBnd"], "seccomp": after["Seccomp"],
                "init_module": raw_syscall(*PROBES["init_module"])}

    _, result = run_in_child(body)
    assert result == {"same": True, "seccomp": "2", "init_module": EPERM}


def test_nested_filter_is_skipped_unless_allowed() -> None:
    def body() -> list[str]:
        apply_security(plan_security({"lxc.cap.drop": ""}))
        first = status_fields()["Seccomp_filters"]
        apply_security(plan_security({"lxc.cap.drop": ""}))
        second = status_fields()["Seccomp_filters"]
        apply_security(plan_security({"lxc.cap.drop": "", "lxc.seccomp.allow_nesting": "1"}))
        return [first, second, status_fields()["Seccomp_filters"]]

    _, counts = run_in_child(body)
    assert counts == ["1", "1", "2"]


def test_pytest_itself_was_never_confined() -> None:
    fields = status_fields()
    assert fields["Seccomp"] == "0" and fields["NoNewPrivs"] == "0"
