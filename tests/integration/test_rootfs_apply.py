"""apply_rootfs against the real kernel, in forked children that own new mount/PID namespaces.

Each test builds a tiny busybox rootfs in a temp dir, forks a child that unshares and forks again
(so the grandchild is PID 1 of the new PID namespace), applies the plan there and reports what it
saw through a pipe. The pytest process itself never unshares or mounts.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from lxctools.errors import StartError
from tests.conftest import cgroup_kind
from lxctools.kernel.ns import CLONE_NEWCGROUP, CLONE_NEWIPC, CLONE_NEWNS, CLONE_NEWPID, unshare
from lxctools.runtime.rootfs import apply_rootfs, mount_operations, plan_rootfs, prepare_root

BUSYBOX = "/bin/busybox"

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="mounting and unsharing need root"),
    pytest.mark.skipif(not os.path.exists(BUSYBOX), reason="needs /bin/busybox (busybox-static)"),
]


def _mountinfo() -> list[str]:
    with open("/proc/self/mountinfo", encoding="utf-8") as handle:
        return handle.read().splitlines()


# Host paths these tests aim mounts at (directly or through planted symlinks).
_WATCHED = ("/etc", "/usr/share", "/proc", "/sys", "/dev")


@pytest.fixture(autouse=True)
def no_leaked_mounts(tmp_path: Path) -> Iterator[None]:
    # Only mounts appearing under paths these tests touch count: other suites may run alongside.
    before = set(_mountinfo())
    yield
    watched = (*_WATCHED, str(tmp_path))
    added = [line for line in set(_mountinfo()) - before
             if line.split()[4].startswith(watched) or line.split()[4] == "/"]
    assert not added, f"mounts leaked into the host namespace: {added}"


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    root = tmp_path / "rootfs"
    for name in ("bin", "proc", "sys", "dev", "etc", "tmp", "mnt", "srv"):
        (root / name).mkdir(parents=True)
    shutil.copy2(BUSYBOX, root / "bin" / "busybox")
    for applet in ("sh", "ls", "cat", "mount"):
        (root / "bin" / applet).symlink_to("busybox")
    (root / "etc" / "marker").write_text("container etc\n")
    return root


def in_namespaces(body: Callable[[], Any], flags: int = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWCGROUP | CLONE_NEWIPC) -> dict[str, Any]:
    """Run `body` as PID 1 of fresh namespaces; returns {"ok": result} or {"error": "Type: text"}."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: unshare, then fork the namespace's PID 1
        status = 1
        try:
            os.close(read_end)
            unshare(flags)
            grandchild = os.fork()
            if grandchild == 0:
                try:
                    report: dict[str, Any] = {"ok": body()}
                except BaseException as exc:  # reported to the test, never raised in a fork
                    report = {"error": f"{type(exc).__name__}: {exc}"}
                try:
                    os.write(write_end, json.dumps(report).encode())
                finally:
                    os._exit(0)
            _, wait_status = os.waitpid(grandchild, 0)
            status = os.waitstatus_to_exitcode(wait_status)
        finally:
            os._exit(status)
    os.close(write_end)
    chunks = []
    while chunk := os.read(read_end, 65536):
        chunks.append(chunk)
    os.close(read_end)
    _, wait_status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(wait_status) == 0
    return json.loads(b"".join(chunks) or b'{"error": "no report"}')


def _errno_of(action: Callable[[], Any]) -> int:
    try:
        action()
    except OSError as exc:
        return exc.errno or -1
    return 0


def _read(path: str) -> str:
    with open(path, "rb") as handle:
        return handle.read(4096).decode(errors="replace")


def _run_busybox(script: str) -> str:
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.dup2(write_end, 1)
        os.execv("/bin/sh", ["sh", "-c", script])
    os.close(write_end)
    out = b""
    while chunk := os.read(read_end, 65536):
        out += chunk
    os.close(read_end)
    os.waitpid(pid, 0)
    return out.decode()


def _mount_points() -> dict[str, str]:
    points = {}
    for line in _mountinfo():
        head, _, tail = line.partition(" - ")
        points[head.split()[4]] = tail.split()[0]
    return points


def test_full_container_filesystem(rootfs: Path) -> None:
    console_master, console_slave = os.openpty()
    tty_master, tty_slave = os.openpty()
    host_pts_dev = os.stat("/dev/pts").st_dev
    values = {
        "lxc.mount.auto": "proc:mixed sys:mixed cgroup:mixed",
        "lxc.mount.entry": ["tmpfs mnt/evil tmpfs size=1m 0 0"],
        "lxc.pty.max": "16",
    }
    (rootfs / "mnt" / "evil").symlink_to("/etc")
    plan = plan_rootfs(values, rootfs=str(rootfs), tty_count=1, container_name="t1")
    console_path, tty_path = os.ttyname(console_slave), os.ttyname(tty_slave)
    console_rdev, tty_rdev = os.fstat(console_slave).st_rdev, os.fstat(tty_slave).st_rdev

    def body() -> dict[str, Any]:
        apply_rootfs(plan, console_path=console_path, tty_paths=[tty_path])
        nodes = {}
        for name in ("null", "zero", "full", "random", "urandom", "tty", "console", "tty1"):
            st = os.stat(f"/dev/{name}")
            nodes[name] = [stat.S_ISCHR(st.st_mode), os.major(st.st_rdev), os.minor(st.st_rdev)]
        ptmx = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY)
        os.close(ptmx)
        return {
            "pid": os.getpid(),
            "proc_self": os.readlink("/proc/self"),
            "nodes": nodes,
            "pts_dev": os.stat("/dev/pts").st_dev,
            "ptmx_link": os.readlink("/dev/ptmx"),
            "fd_link": os.readlink("/dev/fd"),
            "proc_sys_write": _errno_of(lambda: open("/proc/sys/kernel/hostname", "w").close()),
            "sysrq_write": _errno_of(lambda: open("/proc/sysrq-trigger", "w").close()),
            "sys_ro": bool(os.statvfs("/sys").f_flag & os.ST_RDONLY),
            "cgroup_ro": bool(os.statvfs("/sys/fs/cgroup").f_flag & os.ST_RDONLY),
            "masked": {path: _read(path) for path in ("/proc/kcore", "/proc/keys", "/proc/timer_list")
                       if os.path.exists(path)},
            "acpi": os.listdir("/proc/acpi") if os.path.exists("/proc/acpi") else [],
            "firmware": os.listdir("/sys/firmware"),
            "etc": sorted(os.listdir("/etc")),
            "mounts": _mount_points(),
            "shell": _run_busybox("echo $$; ls /dev/pts; cat /proc/1/status | grep -c ^Pid"),
        }

    try:
        report = in_namespaces(body)
    finally:
        for fd in (console_master, console_slave, tty_master, tty_slave):
            os.close(fd)
    assert "error" not in report, report
    seen = report["ok"]
    assert seen["pid"] == 1 and seen["proc_self"] == "1"
    assert seen["nodes"]["null"] == [True, 1, 3]
    assert seen["nodes"]["urandom"] == [True, 1, 9]
    assert seen["nodes"]["tty"] == [True, 5, 0]
    assert seen["nodes"]["console"] == [True, os.major(console_rdev), os.minor(console_rdev)]
    assert seen["nodes"]["tty1"] == [True, os.major(tty_rdev), os.minor(tty_rdev)]
    assert seen["pts_dev"] != host_pts_dev, "/dev/pts must be a fresh devpts instance"
    assert seen["ptmx_link"] == "pts/ptmx" and seen["fd_link"] == "/proc/self/fd"
    assert seen["proc_sys_write"] == errno.EROFS
    assert seen["sysrq_write"] == (errno.EROFS if os.path.exists("/proc/sysrq-trigger") else errno.ENOENT)
    assert seen["sys_ro"] and seen["cgroup_ro"]
    assert seen["masked"] and all(text == "" for text in seen["masked"].values()), seen["masked"]
    assert seen["acpi"] == []
    assert seen["firmware"] == []
    # the tmpfs aimed at mnt/evil -> /etc landed on the container's /etc
    assert seen["etc"] == [] and seen["mounts"].get("/etc") == "tmpfs"
    assert seen["mounts"]["/proc"] == "proc" and seen["mounts"]["/dev/pts"] == "devpts"
    if cgroup_kind() == "v2":
        assert seen["mounts"]["/sys/fs/cgroup"] == "cgroup2"
    else:
        assert seen["mounts"]["/sys/fs/cgroup/cpu"] == "cgroup"
        if cgroup_kind() == "hybrid":
            assert seen["mounts"]["/sys/fs/cgroup/unified"] == "cgroup2"
    assert not any(p.startswith(str(rootfs)) for p in seen["mounts"]), "old root must be gone"
    shell_pid, pts_listing, pid_lines = seen["shell"].split()
    assert int(shell_pid) > 1 and pts_listing == "ptmx" and pid_lines == "1"


def test_symlink_to_host_etc_never_mounts_over_host_etc(rootfs: Path) -> None:
    """rootfs/mnt/evil -> /etc: the entry must land on ROOTFS/etc, never on the host's /etc."""
    (rootfs / "mnt" / "evil").symlink_to("/etc")
    (rootfs / "mnt" / "gone").symlink_to("/usr/share")  # exists on the host, not in the rootfs
    values = {"lxc.autodev": "0", "lxc.mount.entry": ["tmpfs mnt/evil tmpfs size=1m 0 0"]}
    plan = plan_rootfs(values, rootfs=str(rootfs), tty_count=0, container_name="t2")
    missing = plan_rootfs({"lxc.autodev": "0", "lxc.mount.entry": ["tmpfs mnt/gone tmpfs size=1m 0 0"]},
                          rootfs=str(rootfs), tty_count=0, container_name="t2")

    def body() -> dict[str, Any]:
        root_fd = prepare_root(plan)
        mount_operations(plan, root_fd, console_path=None, tty_paths=[])
        points = _mount_points()
        try:
            mount_operations(missing, root_fd, console_path=None, tty_paths=[])
            refused = ""
        except StartError as exc:
            refused = str(exc)
        return {"points": points, "refused": refused, "host_etc": sorted(os.listdir("/etc"))[:3]}

    report = in_namespaces(body, CLONE_NEWNS)
    assert "error" not in report, report
    points = report["ok"]["points"]
    assert "/etc" not in points, "host /etc was mounted over"
    assert points.get(f"{rootfs}/etc") == "tmpfs"
    assert report["ok"]["host_etc"] == sorted(os.listdir("/etc"))[:3]
    assert report["ok"]["refused"].startswith("mount entry 'tmpfs mnt/gone tmpfs size=1m 0 0': target mnt/gone")


def test_missing_bind_source_is_one_line_error(rootfs: Path) -> None:
    plan = plan_rootfs({"lxc.mount.entry": ["/nonexistent srv none bind 0 0"]},
                       rootfs=str(rootfs), tty_count=0, container_name="t3")
    report = in_namespaces(lambda: apply_rootfs(plan, console_path=None, tty_paths=[]))
    assert report == {"error": "StartError: mount entry '/nonexistent srv none bind 0 0': source does not exist"}


def test_optional_entry_is_skipped_and_ro_bind_is_read_only(rootfs: Path, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "file").write_text("hello")
    values = {"lxc.mount.entry": ["/nonexistent srv none bind,optional 0 0",
                                  f"{shared} data none bind,ro,create=dir 0 0"]}
    plan = plan_rootfs(values, rootfs=str(rootfs), tty_count=0, container_name="t4")

    def body() -> dict[str, Any]:
        apply_rootfs(plan, console_path=None, tty_paths=[])
        return {"read": _read("/data/file"),
                "write": _errno_of(lambda: open("/data/new", "w").close()),
                "srv": os.listdir("/srv")}

    report = in_namespaces(body)
    assert report == {"ok": {"read": "hello", "write": errno.EROFS, "srv": []}}
    (shared / "still-writable").write_text("x")  # the host side stays read-write


def test_overlay_rootfs_writes_go_to_upper(rootfs: Path, tmp_path: Path) -> None:
    upper, mountpoint = tmp_path / "delta0", tmp_path / "mnt"
    values = {"lxc.rootfs.path": f"overlay:{rootfs}:{upper}", "lxc.autodev": "0"}
    plan = plan_rootfs(values, rootfs=str(mountpoint), tty_count=0, container_name="t5")

    def body() -> str:
        apply_rootfs(plan, console_path=None, tty_paths=[])
        with open("/etc/written", "w") as handle:
            handle.write("upper")
        return _read("/etc/marker")

    report = in_namespaces(body)
    assert report == {"ok": "container etc\n"}
    assert (upper / "etc" / "written").read_text() == "upper"
    assert not (rootfs / "etc" / "written").exists()
    assert (tmp_path / "olwork").is_dir()


def test_read_only_rootfs_option(rootfs: Path) -> None:
    plan = plan_rootfs({"lxc.rootfs.options": "ro", "lxc.mount.auto": "proc:rw"},
                       rootfs=str(rootfs), tty_count=0, container_name="t6")

    def body() -> dict[str, Any]:
        apply_rootfs(plan, console_path=None, tty_paths=[])
        return {"root": _errno_of(lambda: open("/etc/x", "w").close()),
                "dev": _errno_of(lambda: open("/dev/x", "w").close()),
                "proc_sys": bool(os.statvfs("/proc/sys").f_flag & os.ST_RDONLY)}

    report = in_namespaces(body)
    assert report == {"ok": {"root": errno.EROFS, "dev": 0, "proc_sys": False}}


def test_missing_rootfs_and_missing_tty_pty_are_start_errors(rootfs: Path, tmp_path: Path) -> None:
    gone = plan_rootfs({}, rootfs=str(tmp_path / "nope"), tty_count=0, container_name="t7")
    report = in_namespaces(lambda: apply_rootfs(gone, console_path=None, tty_paths=[]))
    assert report == {"error": f"StartError: lxc.rootfs.path: rootfs {tmp_path / 'nope'} is not a directory"}
    short = plan_rootfs({"lxc.autodev": "0"}, rootfs=str(rootfs), tty_count=2, container_name="t7")
    report = in_namespaces(lambda: apply_rootfs(short, console_path=None, tty_paths=["/dev/null"]))
    assert report == {"error": "StartError: lxc.tty.max: no host pty was allocated for tty2"}
