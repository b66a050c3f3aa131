"""plan_rootfs: what the container's filesystem would be asked of the kernel, without a kernel."""

from __future__ import annotations

from pathlib import Path

import pytest

from lxctools.errors import ConfigError
from lxctools.kernel import mount as k
from lxctools.kernel.mount import MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_RDONLY, MS_REC, MS_SHARED, MS_SLAVE
from lxctools.runtime.rootfs import (
    BindMount, ConsoleBind, MakeNode, MaskPath, MountFs, ReadOnlyPath, RootAttributes, RootfsBind, RootfsOverlay,
    Symlink, TtyBind, host_cgroup_layout, parse_mount_entry, plan_rootfs,
)

ROOT = "/var/lib/lxc/c1/rootfs"
HYBRID = [("cpu", "cgroup", "rw,cpu"), ("systemd", "cgroup", "rw,xattr,release_agent=/x,name=systemd"),
          ("unified", "cgroup2", "rw")]
PURE_V2 = [("", "cgroup2", "rw,nsdelegate")]


def plan(values: dict[str, str | list[str]], tty_count: int = 0, layout=HYBRID):  # type: ignore[no-untyped-def]
    return plan_rootfs(values, rootfs=ROOT, tty_count=tty_count, container_name="c1", cgroup_layout=layout)


def mounts_at(p, target: str) -> list:  # type: ignore[no-untyped-def]
    return [op for op in p.operations if getattr(op, "target", None) == target]


# --- rootfs ----------------------------------------------------------------------------------

def test_default_rootfs_is_the_container_dir_and_nothing_is_automounted() -> None:
    p = plan({"lxc.autodev": "0"})
    assert p.operations == (RootfsBind(ROOT), ConsoleBind("dev/console"))
    assert p.container_name == "c1"


@pytest.mark.parametrize("spec", ["dir:/srv/c1", "/srv/c1", "/srv/c1/", "btrfs:/srv/c1"])
def test_directory_rootfs_forms(spec: str) -> None:
    assert plan({"lxc.rootfs.path": spec}).root == RootfsBind("/srv/c1")


@pytest.mark.parametrize("prefix", ["overlay", "overlayfs"])
def test_overlay_rootfs_has_workdir_next_to_upper(prefix: str) -> None:
    p = plan({"lxc.rootfs.path": f"{prefix}:/base/rootfs:/var/lib/lxc/c1/delta0"})
    assert p.root == RootfsOverlay(("/base/rootfs",), "/var/lib/lxc/c1/delta0", "/var/lib/lxc/c1/olwork", ROOT)


def test_overlay_with_two_lowers_options_and_staging_mount() -> None:
    p = plan({"lxc.rootfs.path": "overlay:/l1:/l2:/u/delta", "lxc.rootfs.options": "xino=off,ro",
              "lxc.rootfs.mount": "/run/pyl/c1"})
    assert p.root == RootfsOverlay(("/l1", "/l2"), "/u/delta", "/u/olwork", "/run/pyl/c1", "xino=off")
    assert p.operations[-1] == RootAttributes(k.MOUNT_ATTR_RDONLY)


@pytest.mark.parametrize("options, attrs", [
    ("ro", RootAttributes(k.MOUNT_ATTR_RDONLY)),
    ("ro,nosuid,nodev", RootAttributes(k.MOUNT_ATTR_RDONLY | k.MOUNT_ATTR_NOSUID | k.MOUNT_ATTR_NODEV)),
    ("ro,rw", None),
    ("noatime", RootAttributes(k.MOUNT_ATTR_NOATIME, k.MOUNT_ATTR__ATIME)),
])
def test_rootfs_options_become_root_attributes_applied_last(options: str, attrs: RootAttributes | None) -> None:
    p = plan({"lxc.rootfs.options": options})
    found = p.of_type(RootAttributes)
    assert found == ([attrs] if attrs else [])
    if attrs:
        assert p.operations[-1] == attrs


@pytest.mark.parametrize("values, words", [
    ({"lxc.rootfs.path": "relative/dir"}, "lxc.rootfs.path 'relative/dir'"),
    ({"lxc.rootfs.path": "dir:relative"}, "must be absolute"),
    ({"lxc.rootfs.path": "overlay:/only-one"}, "overlay:/lower"),
    ({"lxc.rootfs.path": "overlay:/l:relative"}, "overlay:/lower"),
    ({"lxc.rootfs.path": "zfs:pool/c1"}, "storage type 'zfs' is not supported"),
    ({"lxc.rootfs.options": "idmap=container"}, "lxc.rootfs.options: 'idmap=container'"),
    ({"lxc.rootfs.options": "size=1g"}, "lxc.rootfs.options 'size=1g'"),
    ({"lxc.autodev": "2"}, "lxc.autodev: '2'"),
    ({"lxc.autodev.tmpfs.size": "big"}, "lxc.autodev.tmpfs.size: 'big'"),
    ({"lxc.pty.max": "-1"}, "lxc.pty.max: '-1'"),
    ({"lxc.tty.dir": "../x"}, "lxc.tty.dir '../x'"),
])
def test_bad_rootfs_and_dev_keys(values: dict[str, str], words: str) -> None:
    with pytest.raises(ConfigError, match=words.replace("(", r"\(").replace(".", r"\.")):
        plan(values)


# --- lxc.mount.auto --------------------------------------------------------------------------

PROC_MASKS = {"proc/kcore", "proc/keys", "proc/timer_list", "proc/sched_debug"}
PROC_RO = {"proc/sys", "proc/sysrq-trigger", "proc/irq", "proc/bus", "proc/fs"}


@pytest.mark.parametrize("value", ["proc", "proc:mixed"])
def test_proc_mixed_mounts_proc_and_masks(value: str) -> None:
    p = plan({"lxc.mount.auto": value, "lxc.autodev": "0"})
    assert MountFs("proc", "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                   origin="lxc.mount.auto proc:mixed") in p.operations
    assert {op.target for op in p.of_type(ReadOnlyPath)} == PROC_RO
    assert PROC_MASKS <= {op.target for op in p.of_type(MaskPath)}


def test_proc_rw_has_no_masks() -> None:
    p = plan({"lxc.mount.auto": "proc:rw", "lxc.autodev": "0"})
    assert [op.fstype for op in p.of_type(MountFs)] == ["proc"]
    assert not p.of_type(ReadOnlyPath) and not p.of_type(MaskPath)


@pytest.mark.parametrize("value", ["sys", "sys:mixed"])
def test_sys_mixed_is_ro_except_virtual_net(value: str) -> None:
    p = plan({"lxc.mount.auto": value, "lxc.autodev": "0"})
    sysfs = mounts_at(p, "sys")
    assert sysfs[0].fstype == "sysfs" and not sysfs[0].flags & MS_RDONLY
    assert sysfs[1] == ReadOnlyPath("sys", recursive=False, origin="lxc.mount.auto sys:mixed")
    net = mounts_at(p, "sys/devices/virtual/net")[0]
    assert isinstance(net, BindMount) and net.source_in_rootfs and not net.attr_set & k.MOUNT_ATTR_RDONLY
    # the rw bind is attached before /sys turns read-only
    assert p.operations.index(net) < p.operations.index(sysfs[1])
    assert {op.target for op in p.of_type(MaskPath)} == {"sys/firmware", "sys/devices/virtual/powercap"}


def test_sys_ro_and_sys_rw() -> None:
    ro = plan({"lxc.mount.auto": "sys:ro", "lxc.autodev": "0"})
    assert mounts_at(ro, "sys")[0].flags & MS_RDONLY
    assert ro.of_type(MaskPath)
    rw = plan({"lxc.mount.auto": "sys:rw", "lxc.autodev": "0"})
    assert [op.fstype for op in rw.of_type(MountFs)] == ["sysfs"]
    assert not mounts_at(rw, "sys")[0].flags & MS_RDONLY
    assert not rw.of_type(MaskPath) and not rw.of_type(ReadOnlyPath) and not rw.of_type(BindMount)


@pytest.mark.parametrize("value, readonly", [
    ("cgroup", True), ("cgroup:mixed", True), ("cgroup:ro", True), ("cgroup:rw", False),
    ("cgroup:mixed:force", True), ("cgroup:force", True), ("cgroup-full", True), ("cgroup-full:ro", True),
    ("cgroup-full:rw", False), ("cgroup-full:mixed:force", True),
])
def test_cgroup_on_hybrid_host(value: str, readonly: bool) -> None:
    p = plan({"lxc.mount.auto": value, "lxc.autodev": "0"})
    fs = p.of_type(MountFs)
    assert [(op.fstype, op.target) for op in fs] == [
        ("tmpfs", "sys/fs/cgroup"), ("cgroup", "sys/fs/cgroup/cpu"), ("cgroup", "sys/fs/cgroup/systemd"),
        ("cgroup2", "sys/fs/cgroup/unified")]
    assert all(bool(op.flags & MS_RDONLY) == readonly for op in fs[1:])
    assert fs[1].data == "cpu"
    assert fs[2].data == "xattr,name=systemd"  # never release_agent=
    assert p.of_type(ReadOnlyPath) == [ReadOnlyPath("sys/fs/cgroup", recursive=False, origin=fs[0].origin)]


@pytest.mark.parametrize("value, readonly", [("cgroup:mixed", True), ("cgroup:rw", False), ("cgroup2", False),
                                             ("cgroup2:ro", True), ("cgroup2:force", False),
                                             ("cgroup2:ro:force", True)])
def test_cgroup_on_pure_v2_host(value: str, readonly: bool) -> None:
    p = plan({"lxc.mount.auto": value, "lxc.autodev": "0"}, layout=PURE_V2)
    fs = p.of_type(MountFs)
    assert [(op.fstype, op.target) for op in fs] == [("cgroup2", "sys/fs/cgroup")]
    assert bool(fs[0].flags & MS_RDONLY) == readonly


def test_cgroup2_on_hybrid_host_mounts_unified_at_the_top() -> None:
    p = plan({"lxc.mount.auto": "cgroup2", "lxc.autodev": "0"})
    assert [(op.fstype, op.target) for op in p.of_type(MountFs)] == [("cgroup2", "sys/fs/cgroup")]


def test_mount_auto_lines_accumulate_and_combine() -> None:
    p = plan({"lxc.mount.auto": ["proc:rw", "sys:ro cgroup:ro"], "lxc.autodev": "0"})
    assert [op.fstype for op in p.of_type(MountFs)][:3] == ["proc", "sysfs", "tmpfs"]


@pytest.mark.parametrize("value", ["proc:ro", "sys:mixed:ro", "cgroup:bogus", "cgroup:ro:rw", "cgroup2:mixed",
                                   "devpts", "shmounts:/srv/shared"])
def test_bad_mount_auto_values(value: str) -> None:
    with pytest.raises(ConfigError, match=r"^lxc\.mount\.auto: "):
        plan({"lxc.mount.auto": value})


def test_host_cgroup_layout_reads_mountinfo(tmp_path: Path) -> None:
    info = tmp_path / "mountinfo"
    info.write_text(
        "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
        "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
        "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"
        "50 27 0:40 / /srv/cg rw - cgroup2 cgroup2 rw\n")
    assert host_cgroup_layout(str(info)) == [("cpu", "cgroup", "rw,cpu"), ("unified", "cgroup2", "rw")]
    info.write_text("31 23 0:28 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n")
    assert host_cgroup_layout(str(info)) == [("", "cgroup2", "rw,nsdelegate")]


# --- lxc.autodev, console, ttys -------------------------------------------------------------

def test_autodev_default_on() -> None:
    p = plan({})
    dev = mounts_at(p, "dev")[0]
    assert dev == MountFs("tmpfs", "none", "dev", MS_NOSUID, "size=500000,mode=755", origin="lxc.autodev")
    assert [(n.target, n.major, n.minor) for n in p.of_type(MakeNode)] == [
        ("dev/null", 1, 3), ("dev/zero", 1, 5), ("dev/full", 1, 7), ("dev/random", 1, 8),
        ("dev/urandom", 1, 9), ("dev/tty", 5, 0)]
    pts = mounts_at(p, "dev/pts")[0]
    assert pts.fstype == "devpts" and pts.data == "newinstance,ptmxmode=0666,mode=0620,gid=5"
    assert pts.fallback_data == ("newinstance,ptmxmode=0666,mode=0620",)
    links = {op.target: op.points_to for op in p.of_type(Symlink)}
    assert links == {"dev/ptmx": "pts/ptmx", "dev/fd": "/proc/self/fd", "dev/stdin": "/proc/self/fd/0",
                     "dev/stdout": "/proc/self/fd/1", "dev/stderr": "/proc/self/fd/2"}
    assert mounts_at(p, "dev/shm")[0].fstype == "tmpfs"
    assert mounts_at(p, "dev/mqueue")[0].optional


def test_autodev_size_and_pty_max() -> None:
    p = plan({"lxc.autodev.tmpfs.size": "1000000", "lxc.pty.max": "64"})
    assert mounts_at(p, "dev")[0].data == "size=1000000,mode=755"
    assert mounts_at(p, "dev/pts")[0].data.endswith(",gid=5,max=64")


def test_autodev_off_keeps_console_and_ttys() -> None:
    p = plan({"lxc.autodev": "0"}, tty_count=2)
    assert p.operations[1:] == (ConsoleBind("dev/console"), TtyBind(1, "dev/tty1"), TtyBind(2, "dev/tty2"))


def test_tty_dir_puts_nodes_under_dev_dir_with_symlinks() -> None:
    p = plan({"lxc.autodev": "0", "lxc.tty.dir": "lxc"}, tty_count=1)
    assert p.operations[1:] == (ConsoleBind("dev/lxc/console"), ConsoleBind("dev/console"),
                                TtyBind(1, "dev/lxc/tty1"), Symlink("dev/tty1", "lxc/tty1", origin="lxc.tty.dir"))


def test_ordering_dev_then_entries_then_nodes_then_masks() -> None:
    p = plan({"lxc.mount.auto": "proc", "lxc.mount.entry": ["/dev/fuse dev/fuse none bind,create=file 0 0"]})
    kinds = [type(op).__name__ for op in p.operations]
    dev = p.operations.index(mounts_at(p, "dev")[0])
    entry = p.operations.index(mounts_at(p, "dev/fuse")[0])
    assert kinds.index("MountFs") < dev < entry < kinds.index("MakeNode") < kinds.index("ConsoleBind")
    assert kinds.index("ReadOnlyPath") > kinds.index("ConsoleBind")


# --- lxc.mount.entry / lxc.mount.fstab ------------------------------------------------------

def entry(line: str) -> MountFs | BindMount:
    return parse_mount_entry(line, rootfs_path=ROOT)


def test_bind_entry() -> None:
    assert entry("/srv srv none bind,create=dir 0 0") == BindMount(
        "/srv", "srv", create="dir", origin="mount entry '/srv srv none bind,create=dir 0 0'")


def test_rbind_ro_and_flags_become_attrs() -> None:
    op = entry("/srv srv none rbind,ro,nosuid,nodev,noexec,noatime,create=dir 0 0")
    assert isinstance(op, BindMount) and op.recursive
    assert op.attr_set == (k.MOUNT_ATTR_RDONLY | k.MOUNT_ATTR_NOSUID | k.MOUNT_ATTR_NODEV
                           | k.MOUNT_ATTR_NOEXEC | k.MOUNT_ATTR_NOATIME)
    assert op.attr_clr == k.MOUNT_ATTR__ATIME


def test_rw_cancels_earlier_ro() -> None:
    op = entry("/srv srv none bind,ro,rw 0 0")
    assert isinstance(op, BindMount) and op.attr_set == 0


def test_file_bind_optional_and_propagation() -> None:
    op = entry("/etc/resolv.conf etc/resolv.conf none bind,create=file,optional,rslave")
    assert isinstance(op, BindMount)
    assert (op.create, op.optional, op.propagation) == ("file", True, MS_SLAVE | MS_REC)
    assert entry("/srv srv none bind,shared 0 0").propagation == MS_SHARED


def test_relative_bind_source_is_inside_the_rootfs() -> None:
    op = entry("var/data srv none bind,relative 0 0")
    assert isinstance(op, BindMount) and op.source_in_rootfs and op.source == "var/data"


@pytest.mark.parametrize("target, inner", [
    ("srv", "srv"), ("/srv", "srv"), (f"{ROOT}/srv/x", "srv/x"), ("srv//x/", "srv/x"), ("/a/../b", "b"),
])
def test_targets_are_inside_the_rootfs(target: str, inner: str) -> None:
    assert entry(f"tmpfs {target} tmpfs size=1m 0 0").target == inner


def test_filesystem_entry_keeps_data_and_flags() -> None:
    op = entry("tmpfs tmp tmpfs size=64m,mode=1777,nosuid,nodev,create=dir 0 0")
    assert op == MountFs("tmpfs", "tmpfs", "tmp", MS_NOSUID | MS_NODEV, "size=64m,mode=1777", create="dir",
                         origin="mount entry 'tmpfs tmp tmpfs size=64m,mode=1777,nosuid,nodev,create=dir 0 0'")
    assert entry("proc proc2 proc defaults").create is None  # no create=: target must exist (as LXC)
    assert not entry("tmpfs tmp tmpfs ro").flags & MS_BIND
    assert entry("tmpfs tmp tmpfs ro").flags & MS_RDONLY


def test_octal_escapes_in_fields() -> None:
    assert entry(r"/srv/my\040dir my\040dir none bind 0 0").target == "my dir"


@pytest.mark.parametrize("line, words", [
    ("/srv", "expected 'SOURCE TARGET FSTYPE"),
    ("/srv srv", "expected 'SOURCE TARGET FSTYPE"),
    ("/srv srv none bind 0 0 0", "expected 'SOURCE TARGET FSTYPE"),
    ("/srv srv none bind x 0", "dump and pass"),
    ("/srv srv none bind,create=socket 0 0", "create= must be dir or file"),
    ("srv srv none bind 0 0", "bind source must be absolute"),
    ("/srv srv none defaults 0 0", "needs the bind or rbind"),
    ("/srv / none bind 0 0", "over the rootfs itself"),
    (f"/srv {ROOT} none bind 0 0", "over the rootfs itself"),
    ("/srv srv none bind,idmap=container 0 0", "idmapped"),
    ("tmpfs tmp tmpfs relative 0 0", "relative option only applies"),
    ("/srv srv none bind,remount 0 0", "remount"),
])
def test_bad_entries_name_key_and_line(line: str, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        plan({"lxc.mount.entry": [line]})
    assert str(caught.value).startswith(f"lxc.mount.entry '{line}': ")
    assert words in str(caught.value)


def test_fstab_lines_come_before_entries(tmp_path: Path) -> None:
    fstab = tmp_path / "fstab"
    fstab.write_text("# comment\n\n/srv srv none bind,create=dir 0 0\ntmpfs tmp tmpfs size=1m 0 0\n")
    p = plan({"lxc.mount.fstab": str(fstab), "lxc.mount.entry": "/opt opt none bind 0 0", "lxc.autodev": "0"})
    assert [op.target for op in p.operations[1:4]] == ["srv", "tmp", "opt"]


def test_bad_fstab(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^lxc\.mount\.fstab '/nonexistent/fstab': No such file"):
        plan({"lxc.mount.fstab": "/nonexistent/fstab"})
    with pytest.raises(ConfigError, match="must be absolute"):
        plan({"lxc.mount.fstab": "fstab"})
    fstab = tmp_path / "fstab"
    fstab.write_text("/srv srv none bind,create=nope 0 0\n")
    with pytest.raises(ConfigError, match=rf"^lxc\.mount\.fstab {fstab}:1 '/srv srv none bind,create=nope 0 0': "):
        plan({"lxc.mount.fstab": str(fstab)})


def test_plan_is_frozen_and_hashable() -> None:
    p = plan({"lxc.mount.auto": "proc sys cgroup", "lxc.mount.entry": ["/srv srv none bind 0 0"]}, tty_count=4)
    assert hash(p) == hash(plan({"lxc.mount.auto": "proc sys cgroup",
                                 "lxc.mount.entry": ["/srv srv none bind 0 0"]}, tty_count=4))
    with pytest.raises(AttributeError):
        p.operations = ()  # type: ignore[misc]
