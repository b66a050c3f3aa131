"""Unit tests for lxctools.clone (config rewriting, tree copy, snapshot naming/listing, bookkeeping)
and lxctools.autostart (selection and ordering): no container is started."""

from __future__ import annotations

import io
import os
import re
import stat
from pathlib import Path, PurePosixPath

import pytest
from hypothesis import given, settings, strategies as st

from lxctools import autostart as au
from lxctools import clone, dependents
from lxctools.config.model import ContainerConfig
from lxctools.errors import UsageError

IS_ROOT = os.geteuid() == 0


# ---- config rewriting -----------------------------------------------------------------------
def test_rewrite_paths_whole_components_only():
    text = ('lxc.rootfs.path = dir:/var/lib/lxc/c1/rootfs\n'
            'lxc.mount.fstab = /var/lib/lxc/c1/fstab\n'
            'lxc.mount.entry = /var/lib/lxc/c10/x srv none bind 0 0\n'
            'lxc.mount.entry = /srv/var/lib/lxc/c1/y mnt none bind 0 0\n'
            'lxc.log.file = /var/lib/lxc/c1\n')
    out = clone.rewrite_paths(text, "/var/lib/lxc/c1", "/srv/pyl/c2")
    assert "dir:/srv/pyl/c2/rootfs" in out
    assert "lxc.mount.fstab = /srv/pyl/c2/fstab" in out
    assert "/var/lib/lxc/c10/x" in out          # other container untouched
    assert "/srv/var/lib/lxc/c1/y" in out       # a longer path that merely contains it
    assert out.endswith("lxc.log.file = /srv/pyl/c2\n")


def test_rewrite_paths_in_toml_strings_and_overlay_specs():
    text = ('[lxc.rootfs]\npath = "overlay:/l/c1/rootfs:/l/c2/overlay/delta"\n'
            '[lxc.mount]\nentry = ["/l/c2/data srv none bind 0 0"]\n')
    out = clone.rewrite_paths(text, "/l/c2", "/l/c3")
    assert 'path = "overlay:/l/c1/rootfs:/l/c3/overlay/delta"' in out
    assert '"/l/c3/data srv' in out


# rewrite_paths, snapshot_index and the path helpers were regular expressions and pathlib (each
# ~9 ms of pyl-copy's import time); these hold the hand-written code to what they replaced.
_PATHS_ALPHABET = "/ab1_.-:\"',] \t\n]é٣"


@settings(max_examples=2000, deadline=None)
@given(text=st.text(alphabet=_PATHS_ALPHABET, max_size=40),
       old=st.text(alphabet="/ab1.-", min_size=1, max_size=6).filter(lambda s: s.rstrip("/")),
       new=st.text(alphabet="/xy", max_size=4))
def test_rewrite_paths_matches_the_regular_expression_it_replaced(text, old, new):
    stripped = old.rstrip("/")
    pattern = re.compile(r"(?<![\w./-])" + re.escape(stripped) + r"(?=[/:\s\"',\]]|$)", re.M)
    assert clone.rewrite_paths(text, old, new) == pattern.sub(lambda _m: new.rstrip("/"), text)


@settings(max_examples=500, deadline=None)
@given(name=st.one_of(st.text(alphabet="snap0129٣x", max_size=8), st.from_regex(r"snap[0-9]{1,4}", fullmatch=True)))
def test_snapshot_index_matches_the_regular_expression_it_replaced(name):
    match = re.fullmatch(r"snap(0|[1-9][0-9]*)", name)
    assert clone.snapshot_index(name) == (int(match.group(1)) if match else None)


@given(path=st.text(alphabet="/a.b", max_size=16))
def test_clean_path_spells_a_path_as_pathlib(path):
    if path.startswith("//") and not path.startswith("///"):
        return  # pathlib keeps a leading "//" (POSIX leaves its meaning open); pyl folds it
    assert clone.clean_path(path) == str(PurePosixPath(path))


@given(path=st.text(alphabet="/ab.", max_size=10), folder=st.text(alphabet="/ab.", max_size=8))
def test_relative_inside_as_pathlib_relative_to(path, folder):
    path, folder = "/" + path, "/" + folder
    if "//" in (os.path.abspath(path)[:2], os.path.abspath(folder)[:2]):
        return  # a leading "//" again: the same folder to Linux, another root to pathlib
    try:
        expected = str(PurePosixPath(os.path.abspath(path)).relative_to(os.path.abspath(folder)))
    except ValueError:
        expected = None
    got = clone._relative_inside(path, folder)
    assert (got if got != "" else ".") == expected


def _cfg(text: str) -> ContainerConfig:
    return ContainerConfig.from_text(text, fmt="lxc")


def test_rewrite_config_sets_name_rootfs_and_new_macs():
    cfg = _cfg("# keep me\nlxc.uts.name = c1\nlxc.rootfs.path = dir:/l/c1/rootfs\n"
               "lxc.net.0.type = veth\nlxc.net.0.hwaddr = 00:16:3e:11:22:33\n"
               "lxc.net.1.type = veth\nlxc.net.1.hwaddr = 00:16:3e:44:55:66\n")
    changed = clone.rewrite_config(cfg, new_name="c2", keep_name=False, keep_mac=False,
                                   rootfs=clone.Storage("dir", "/l/c2/rootfs", prefixed=True))
    values = cfg.values()
    assert values["lxc.uts.name"] == "c2"
    assert values["lxc.rootfs.path"] == "dir:/l/c2/rootfs"
    assert set(changed) == {"lxc.net.0.hwaddr", "lxc.net.1.hwaddr"}
    for key in changed:
        mac = values[key]
        assert mac.startswith("00:16:3e:") and "x" not in mac
    assert values["lxc.net.0.hwaddr"] != "00:16:3e:11:22:33"
    assert "# keep me" in cfg.to_text()
    assert "lxc.ephemeral" not in values


def test_rewrite_config_keeps_name_and_mac_and_marks_ephemeral():
    cfg = _cfg("lxc.uts.name = c1\nlxc.net.0.type = veth\nlxc.net.0.hwaddr = 00:16:3e:11:22:33\n")
    changed = clone.rewrite_config(cfg, new_name="c2", keep_name=True, keep_mac=True, rootfs=None,
                                   ephemeral=True)
    values = cfg.values()
    assert changed == {}
    assert values["lxc.uts.name"] == "c1"
    assert values["lxc.net.0.hwaddr"] == "00:16:3e:11:22:33"
    assert values["lxc.ephemeral"] == "1"


@pytest.mark.parametrize("value, kind, path, lowers", [
    ("dir:/l/c1/rootfs", "dir", "/l/c1/rootfs", ()),
    ("/l/c1/rootfs", "dir", "/l/c1/rootfs", ()),
    ("overlay:/l/c1/rootfs:/l/c2/overlay/delta", "overlay", "/l/c2/overlay/delta", ("/l/c1/rootfs",)),
    ("overlayfs:/a:/b:/u", "overlay", "/u", ("/a", "/b")),
    (None, "none", None, ()),
])
def test_parse_storage(value, kind, path, lowers):
    storage = clone.parse_storage(value)
    assert storage.kind == kind
    assert storage.path == path
    assert storage.lowers == lowers
    if value:  # the spec written back is the one read (overlayfs: is spelled overlay:)
        assert clone.storage_spec(storage) == value.replace("overlayfs:", "overlay:")


def test_parse_storage_refuses_block_backends():
    with pytest.raises(UsageError):
        clone.parse_storage("lvm:/dev/vg/lv")


def test_target_kind_rules():
    dir_src = clone.Storage("dir", "/r")
    ovl_src = clone.Storage("overlay", "/u", ("/r",))
    assert clone.CopyRequest().target_kind(dir_src) == "dir"
    assert clone.CopyRequest(snapshot=True).target_kind(dir_src) == "overlay"
    assert clone.CopyRequest(backing="overlayfs").target_kind(dir_src) == "overlay"
    assert clone.CopyRequest().target_kind(ovl_src) == "overlay"
    with pytest.raises(UsageError):
        clone.CopyRequest(snapshot=True, backing="dir").target_kind(dir_src)
    with pytest.raises(UsageError):
        clone.CopyRequest(backing="dir").target_kind(ovl_src)
    with pytest.raises(UsageError):
        clone.CopyRequest(backing="btrfs").target_kind(dir_src)


# ---- dependency files -------------------------------------------------------------------------
def test_pairs_format_as_lxc_writes_it(tmp_path):
    assert dependents.format_pairs([("/var/lib/lxc", "c2"), ("/srv", "c3")]) == "/var/lib/lxc\nc2\n/srv\nc3\n"
    f = tmp_path / "lxc_snapshots"
    f.write_text("/var/lib/lxc\nc2\n/srv\nc3\n")
    assert dependents.read_pairs(f) == [("/var/lib/lxc", "c2"), ("/srv", "c3")]
    f.write_text("2\n")  # LXC 1.x count format
    assert dependents.read_pairs(f) == []
    assert dependents.read_pairs(tmp_path / "missing") == []


def test_register_is_idempotent_and_prunes_vanished_clones(tmp_path):
    owner = tmp_path / "src"
    owner.mkdir()
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.toml").write_text("")
    dependents.register_clone(owner, (str(tmp_path), "a"))
    dependents.register_clone(owner, (str(tmp_path), "a"))
    dependents.register_clone(owner, (str(tmp_path), "b"))
    assert (owner / "lxc_snapshots").read_text() == f"{tmp_path}\na\n{tmp_path}\nb\n"
    (tmp_path / "a" / "config.toml").unlink()    # "a" vanished without unregistering
    dependents.register_clone(owner, (str(tmp_path), "b"))
    assert dependents.read_pairs(owner / "lxc_snapshots") == [(str(tmp_path), "b")]
    dependents.unregister_clone(owner, (str(tmp_path), "b"))
    assert not (owner / "lxc_snapshots").exists()


def test_one_container_is_one_pair_however_its_lxcpath_is_spelled(tmp_path):
    owner = tmp_path / "src"
    owner.mkdir()
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "config.toml").write_text("")
    dependents.register_clone(owner, (f"{tmp_path}/", "a"))
    dependents.register_clone(owner, (str(tmp_path), "a"))
    assert dependents.live_clones(owner) == [(str(tmp_path), "a")]
    dependents.unregister_clone(owner, (f"{tmp_path}//", "a"))
    assert dependents.live_clones(owner) == [] and not (owner / "lxc_snapshots").exists()
    (tmp_path / "a" / "lxc_rdepends").write_text(f"{owner.parent}/\nsrc\n")
    assert dependents.source_of(tmp_path / "a") == (str(tmp_path), "src")


# ---- tree copy -----------------------------------------------------------------------------------
def test_copy_tree_keeps_links_modes_devices_and_owners(tmp_path):
    src = tmp_path / "src"
    (src / "etc").mkdir(parents=True)
    (src / "etc" / "passwd").write_text("root:x:0:0\n")
    os.chmod(src / "etc" / "passwd", 0o640)
    (src / "bin").mkdir()
    (src / "bin" / "busybox").write_bytes(b"\x7fELF" + b"x" * 5000)
    os.chmod(src / "bin" / "busybox", 0o4755)
    os.link(src / "bin" / "busybox", src / "bin" / "sh")
    os.symlink("/etc/passwd", src / "escape")          # absolute link: kept as a link, not followed
    os.symlink("../etc", src / "bin" / "etc-link")
    os.mkfifo(src / "fifo")
    (src / "tmp").mkdir()
    os.chmod(src / "tmp", 0o1777)
    if IS_ROOT:
        os.mknod(src / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
        os.chown(src / "etc" / "passwd", 1234, 5678)
        os.setxattr(src / "etc" / "passwd", "user.note", b"hello")
    os.utime(src / "etc" / "passwd", ns=(1_000_000_000, 2_000_000_000))

    dst = tmp_path / "dst"
    clone.copy_tree(src, dst)

    assert (dst / "etc" / "passwd").read_text() == "root:x:0:0\n"
    assert stat.S_IMODE(os.lstat(dst / "etc" / "passwd").st_mode) == 0o640
    assert os.lstat(dst / "etc" / "passwd").st_mtime_ns == 2_000_000_000
    assert stat.S_IMODE(os.lstat(dst / "bin" / "busybox").st_mode) == 0o4755
    assert os.lstat(dst / "bin" / "sh").st_ino == os.lstat(dst / "bin" / "busybox").st_ino
    assert os.lstat(dst / "bin" / "sh").st_ino != os.lstat(src / "bin" / "sh").st_ino
    assert os.readlink(dst / "escape") == "/etc/passwd"
    assert os.readlink(dst / "bin" / "etc-link") == "../etc"
    assert stat.S_ISFIFO(os.lstat(dst / "fifo").st_mode)
    assert stat.S_IMODE(os.lstat(dst / "tmp").st_mode) == 0o1777
    if IS_ROOT:
        st = os.lstat(dst / "null")
        assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 3)
        assert (os.lstat(dst / "etc" / "passwd").st_uid, os.lstat(dst / "etc" / "passwd").st_gid) == (1234, 5678)
        try:
            assert os.getxattr(dst / "etc" / "passwd", "user.note") == b"hello"
        except OSError:
            pass  # tmpfs without user xattrs


def test_copy_tree_keeps_holes(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    image = src / "disk.img"
    with open(image, "wb") as f:  # 64 MiB: data at 0, at 32 MiB and in the last byte, holes between
        f.write(b"head")
        f.seek(32 << 20)
        f.write(b"middle" * 1000)
        f.seek((64 << 20) - 1)
        f.write(b"!")
    (src / "empty-sparse").open("wb").truncate(8 << 20)   # a hole only
    if os.stat(image).st_blocks * 512 >= 64 << 20:
        pytest.skip("this file system does not make sparse files")
    clone.copy_tree(src, tmp_path / "dst")
    copied = tmp_path / "dst" / "disk.img"
    assert copied.read_bytes() == image.read_bytes()
    assert os.stat(copied).st_blocks <= os.stat(image).st_blocks + 64  # holes stayed holes
    hole = tmp_path / "dst" / "empty-sparse"
    assert os.stat(hole).st_size == 8 << 20 and os.stat(hole).st_blocks == 0


def test_copy_tree_refuses_existing_target(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "dst").mkdir()
    with pytest.raises(Exception):
        clone.copy_tree(tmp_path / "src", tmp_path / "dst")


def test_hostname_written_only_to_regular_file_never_through_links(tmp_path):
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "hostname").write_text("old\n")
    assert clone.set_hostname_file(clone.Storage("dir", root), "new")
    assert (root / "etc" / "hostname").read_text() == "new\n"

    outside = tmp_path / "host-file"
    outside.write_text("host\n")
    (root / "etc" / "hostname").unlink()
    os.symlink(outside, root / "etc" / "hostname")
    assert not clone.set_hostname_file(clone.Storage("dir", root), "evil")
    assert outside.read_text() == "host\n"


def test_hostname_of_overlay_clone_goes_to_upper(tmp_path):
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    (lower / "etc").mkdir(parents=True)
    (lower / "etc" / "hostname").write_text("src\n")
    os.chmod(lower / "etc", 0o751)
    upper.mkdir()
    assert clone.set_hostname_file(clone.Storage("overlay", upper, (lower,)), "clone")
    assert (upper / "etc" / "hostname").read_text() == "clone\n"
    assert stat.S_IMODE(os.lstat(upper / "etc").st_mode) == 0o751
    assert (lower / "etc" / "hostname").read_text() == "src\n"


# ---- snapshots -----------------------------------------------------------------------------------
def test_next_snapshot_name_takes_first_gap():
    assert clone.next_snapshot_name([]) == "snap0"
    assert clone.next_snapshot_name(["snap0", "snap1"]) == "snap2"
    assert clone.next_snapshot_name(["snap0", "snap2", "junk", "snap01"]) == "snap1"


def test_snapshot_index():
    assert clone.snapshot_index("snap12") == 12
    assert clone.snapshot_index("snap01") is None
    assert clone.snapshot_index("snapx") is None


def test_listing_format_as_lxc_snapshot():
    infos = [clone.SnapshotInfo("snap0", "/var/lib/lxc/c1/snaps", "2026:11:27 20:08:31", "first\n"),
             clone.SnapshotInfo("snap1", "/var/lib/lxc/c1/snaps", "2026:11:28 09:00:00", None)]
    assert clone.format_listing(infos, False) == (
        "snap0 (/var/lib/lxc/c1/snaps) 2026:11:27 20:08:31\n"
        "snap1 (/var/lib/lxc/c1/snaps) 2026:11:28 09:00:00\n")
    assert clone.format_listing(infos, True).splitlines()[1] == "first"
    assert clone.format_listing([], True) == "No snapshots\n"
    assert infos[1].as_json() == {"name": "snap1", "path": "/var/lib/lxc/c1/snaps",
                                  "timestamp": "2026:11:28 09:00:00", "comment": None}


def test_ephemeral_name():
    name = clone.ephemeral_name("web")
    assert name.startswith("web_") and len(name) == 10
    assert len(clone.ephemeral_name("x" * 64)) <= 64


# ---- autostart selection ---------------------------------------------------------------------------
def E(name, auto=True, order=0, delay=0, groups=()):
    return au.AutostartEntry(name, auto, order, delay, tuple(groups))


ENTRIES = [E("a1", delay=3, groups=["onboot"]), E("a2"), E("a3", auto=False), E("t2", auto=False),
           E("w1", order=5, groups=["web", "onboot"]), E("w0", order=5, groups=["web"]),
           E("db", order=-1, groups=["onboot"])]


def names(entries):
    return [e.name for e in entries]


def test_default_is_null_group_only():
    assert names(au.select(ENTRIES, groups=None, all_groups=False, ignore_auto=False)) == ["a2"]


def test_groups_in_given_order_then_order_then_name():
    chosen = au.select(ENTRIES, groups=["onboot", ""], all_groups=False, ignore_auto=False)
    assert names(chosen) == ["db", "a1", "w1", "a2"]
    chosen = au.select(ENTRIES, groups=["web", "onboot"], all_groups=False, ignore_auto=False)
    assert names(chosen) == ["w0", "w1", "db", "a1"]   # w1 handled once, in the first matching pass


def test_all_and_ignore_auto():
    assert names(au.select(ENTRIES, groups=None, all_groups=True, ignore_auto=False)) == \
        ["db", "a1", "a2", "w0", "w1"]
    assert names(au.select(ENTRIES, groups=None, all_groups=True, ignore_auto=True)) == \
        ["db", "a1", "a2", "a3", "t2", "w0", "w1"]


def test_shutdown_order_is_reversed():
    assert names(au.select(ENTRIES, groups=None, all_groups=True, ignore_auto=False, reverse=True)) == \
        ["w1", "w0", "a2", "a1", "db"]


def test_groups_parsing_keeps_order_and_reports_duplicates():
    groups, warnings = au.parse_groups(["onboot,", "web,onboot", ","])
    assert groups == ["onboot", "", "web"]
    assert warnings == ['Duplicate group "onboot" in list - ignoring', "Duplicate NULL group in list - ignoring",
                        "Duplicate NULL group in list - ignoring"]


def test_entry_from_values_splits_group_lines():
    e = au.entry_from_values("c", {"lxc.start.auto": "1", "lxc.start.order": "-3", "lxc.start.delay": "7",
                                   "lxc.group": ["onboot web", "db"]})
    assert e == E("c", True, -3, 7, ["onboot", "web", "db"])
    assert au.entry_from_values("d", {}) == E("d", False, 0, 0, [])


def test_list_lines_and_exit_status():
    assert au.list_line(E("a1", delay=3), au.Action.START) == "a1 3"
    assert au.list_line(E("a1", delay=3), au.Action.REBOOT) == "a1 3"
    assert au.list_line(E("a1", delay=3), au.Action.SHUTDOWN) == "a1"
    assert au.exit_status(0, 0, 0) == 1          # no containers at all: lxc-autostart exits 1
    assert au.exit_status(3, 0, 0) == 0
    assert au.exit_status(3, 2, 2) == 1
    assert au.exit_status(3, 2, 1) == 2
    assert au.exit_status(3, 2, 0) == 0


def test_run_autostart_with_no_containers(tmp_path):
    from lxctools.paths import Layout
    out, err = io.StringIO(), io.StringIO()
    rc = au.run_autostart(Layout(tmp_path / "lxc", tmp_path / "run"), au.Action.START, groups=None,
                          all_groups=False, ignore_auto=False, timeout=1, list_only=True, out=out, err=err)
    assert rc == 1 and out.getvalue() == ""


@pytest.mark.parametrize("value, folder", [
    ("dir:/l/c1//rootfs/", "/l/c1/rootfs"), ("/l/./c1/rootfs", "/l/c1/rootfs"),
    ("overlay:/a:/b", None), ("", None), (None, None),
    ("dir:", None),   # not the current folder (str(Path("")) is "."), which destroy would delete
    ("dir:rel/rootfs", None), ("rel/rootfs", None),   # nor a folder below it
])
def test_destroys_rootfs_folder(value, folder):
    from lxctools.container import _rootfs_dir
    assert _rootfs_dir(value) == folder


@pytest.mark.parametrize("rootfs", ["dir:", "dir:rel", "rel"])
def test_destroy_of_a_relative_rootfs_deletes_nothing_of_the_current_folder(tmp_path, rootfs):
    import subprocess
    import sys
    cwd = tmp_path / "admin-home"
    (cwd / "rel" / "work").mkdir(parents=True)
    (cwd / "precious").write_text("x")
    folder = tmp_path / "lxc" / "bad"
    folder.mkdir(parents=True)
    (folder / "config").write_text(f"lxc.uts.name = bad\nlxc.rootfs.path = {rootfs}\n")
    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYL_")}
    env.update(PYL_LXCPATH=str(tmp_path / "lxc"), PYL_RUNDIR=str(tmp_path / "run"))
    proc = subprocess.run([sys.executable, str(root / "bin" / "pyl-destroy"), "-n", "bad"], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert not folder.exists()
    assert (cwd / "precious").read_text() == "x" and (cwd / "rel" / "work").is_dir()
