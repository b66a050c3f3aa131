"""pyl-copy and pyl-snapshot on real busybox containers under a throwaway lxcpath."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, requires_busybox, requires_root

pytestmark = [requires_root, requires_busybox]

# Names are per test process: cgroups (pyl.payload.NAME) are global, other suites run in parallel.
P = f"cp{os.getpid() % 100000}"


def _config(tmp: Path, extra: str = "") -> str:
    path = tmp / "c.conf"
    path.write_text(f"lxc.include = {ROOT}/configs/common.toml\nlxc.net.0.type = empty\n{extra}")
    return str(path)


def _create(pyl, name: str, tmp: Path | None = None, extra: str = "") -> Path:
    args = ["-n", name, "-t", "busybox"]
    if tmp is not None:
        args += ["-f", _config(tmp, extra)]
    pyl.ok("create", *args)
    return pyl.lxcpath / name


def _start(pyl, name: str) -> None:
    result = pyl("start", "-n", name)
    if result.returncode != 0 and "cannot import name" in result.stderr:
        pytest.fail(f"the container did not start: {result.stderr.strip()}")
    assert result.returncode == 0, result.stderr


def _toml(path: Path) -> dict:
    import tomllib
    return tomllib.loads((path / "config.toml").read_text())["lxc"]


def test_full_copy_rewrites_paths_name_mac_and_hostname(pyl):
    src = _create(pyl, f"{P}a")
    pyl.ok("copy", "-n", f"{P}a", "-N", f"{P}b")
    new = pyl.lxcpath / f"{P}b"
    old_cfg, new_cfg = _toml(src), _toml(new)
    assert new_cfg["rootfs"]["path"] == f"dir:{new}/rootfs"
    assert new_cfg["uts"]["name"] == f"{P}b"
    assert new_cfg["net"]["0"]["hwaddr"] != old_cfg["net"]["0"]["hwaddr"]
    assert new_cfg["net"]["0"]["hwaddr"].startswith("00:16:3e:")
    assert (new / "rootfs" / "etc" / "hostname").read_text().strip() == f"{P}b"
    assert (src / "rootfs" / "etc" / "hostname").read_text().strip() == f"{P}a"
    # The applets stay hard links of the copy's own busybox (a copy without them would hold
    # ~270 separate 2 MB binaries), and symlinks stay symlinks.
    busybox = (new / "rootfs" / "bin" / "busybox").stat()
    assert (new / "rootfs" / "linuxrc").stat().st_ino == busybox.st_ino != (src / "rootfs" / "bin" / "busybox").stat().st_ino
    assert busybox.st_nlink == (src / "rootfs" / "bin" / "busybox").stat().st_nlink
    assert os.readlink(new / "rootfs" / "etc" / "mtab") == "/proc/mounts"
    assert not (new / "partial").exists() and not (new / "lxc_rdepends").exists()
    assert f"{P}b" in pyl.ok("ls", "-1").stdout.split()


def test_keepname_keepmac(pyl):
    src = _create(pyl, f"{P}a")
    pyl.ok("copy", "-n", f"{P}a", "-N", f"{P}b", "-K", "-M")
    new_cfg, old_cfg = _toml(pyl.lxcpath / f"{P}b"), _toml(src)
    assert new_cfg["uts"]["name"] == f"{P}a"
    assert new_cfg["net"]["0"]["hwaddr"] == old_cfg["net"]["0"]["hwaddr"]
    assert (pyl.lxcpath / f"{P}b" / "rootfs" / "etc" / "hostname").read_text().strip() == f"{P}a"


def test_copy_refuses_existing_target_and_missing_source(pyl):
    _create(pyl, f"{P}a")
    _create(pyl, f"{P}b")
    result = pyl("copy", "-n", f"{P}a", "-N", f"{P}b")
    assert result.returncode == 68 and "already exists" in result.stderr
    assert pyl("copy", "-n", f"{P}zz", "-N", f"{P}c").returncode == 66
    assert not (pyl.lxcpath / f"{P}c").exists()


def test_copied_container_runs_with_its_own_hostname(pyl, tmp_path):
    _create(pyl, f"{P}a", tmp_path)
    pyl.ok("copy", "-n", f"{P}a", "-N", f"{P}b")
    _start(pyl, f"{P}a")
    _start(pyl, f"{P}b")
    assert pyl.ok("attach", "-n", f"{P}a", "--", "hostname").stdout.strip() == f"{P}a"
    assert pyl.ok("attach", "-n", f"{P}b", "--", "hostname").stdout.strip() == f"{P}b"
    result = pyl("copy", "-n", f"{P}a", "-N", f"{P}c")
    assert result.returncode == 67, "copying a running container needs -a"
    pyl.ok("stop", "-n", f"{P}a", "-k")
    pyl.ok("stop", "-n", f"{P}b", "-k")


def test_overlay_snapshot_clone_bookkeeping_and_destroy(pyl):
    src = _create(pyl, f"{P}a")
    pyl.ok("copy", "-n", f"{P}a", "-N", f"{P}s", "-s")
    clone = pyl.lxcpath / f"{P}s"
    assert _toml(clone)["rootfs"]["path"] == f"overlay:{src}/rootfs:{clone}/overlay/delta"
    assert (clone / "lxc_rdepends").read_text() == f"{pyl.lxcpath}\n{P}a\n"
    assert (src / "lxc_snapshots").read_text() == f"{pyl.lxcpath}\n{P}s\n"
    # the new hostname lives in the upper layer; the source keeps its own
    assert (clone / "overlay" / "delta" / "etc" / "hostname").read_text().strip() == f"{P}s"
    assert (src / "rootfs" / "etc" / "hostname").read_text().strip() == f"{P}a"

    result = pyl("destroy", "-n", f"{P}a")
    assert result.returncode == 67 and "clones" in result.stderr
    pyl.ok("destroy", "-n", f"{P}s")
    assert not (src / "lxc_snapshots").exists()
    pyl.ok("copy", "-n", f"{P}a", "-N", f"{P}s", "-s")
    pyl.ok("destroy", "-n", f"{P}a", "-s")
    assert not src.exists() and not clone.exists()


def test_overlay_clone_sees_source_files_and_writes_to_delta(pyl, tmp_path):
    src = _create(pyl, f"{P}a", tmp_path)
    (src / "rootfs" / "root" / "from-source").write_text("lower\n")
    pyl.ok("copy", "-n", f"{P}a", "-N", f"{P}s", "-s")
    _start(pyl, f"{P}s")
    try:
        assert pyl.ok("attach", "-n", f"{P}s", "--", "cat", "/root/from-source").stdout == "lower\n"
        pyl.ok("attach", "-n", f"{P}s", "--", "sh", "-c", "echo upper > /root/new; rm /root/from-source")
    finally:
        pyl.ok("stop", "-n", f"{P}s", "-k")
    delta = pyl.lxcpath / f"{P}s" / "overlay" / "delta"
    assert (delta / "root" / "new").read_text() == "upper\n"
    assert not (src / "rootfs" / "root" / "new").exists()
    assert (src / "rootfs" / "root" / "from-source").read_text() == "lower\n"


def test_copy_of_an_overlay_clone_copies_the_delta(pyl):
    src = _create(pyl, f"{P}a")
    pyl.ok("copy", "-n", f"{P}a", "-N", f"{P}s", "-s")
    (pyl.lxcpath / f"{P}s" / "overlay" / "delta" / "marker").write_text("x")
    pyl.ok("copy", "-n", f"{P}s", "-N", f"{P}t")
    t = pyl.lxcpath / f"{P}t"
    assert _toml(t)["rootfs"]["path"] == f"overlay:{src}/rootfs:{t}/overlay/delta"
    assert (t / "overlay" / "delta" / "marker").read_text() == "x"
    assert (t / "lxc_rdepends").read_text() == f"{pyl.lxcpath}\n{P}a\n"
    assert (src / "lxc_snapshots").read_text() == f"{pyl.lxcpath}\n{P}s\n{pyl.lxcpath}\n{P}t\n"
    assert pyl("copy", "-n", f"{P}s", "-N", f"{P}u", "-B", "dir").returncode == 64


def test_rename(pyl):
    _create(pyl, f"{P}a")
    pyl.ok("snapshot", "-n", f"{P}a")
    pyl.ok("copy", "-n", f"{P}a", "-N", f"{P}r", "-R")
    new = pyl.lxcpath / f"{P}r"
    assert not (pyl.lxcpath / f"{P}a").exists()
    cfg = _toml(new)
    assert cfg["rootfs"]["path"] == f"dir:{new}/rootfs" and cfg["uts"]["name"] == f"{P}r"
    assert _toml(new / "snaps" / "snap0")["rootfs"]["path"] == f"dir:{new}/snaps/snap0/rootfs"
    assert (new / "rootfs" / "etc" / "hostname").read_text().strip() == f"{P}r"
    assert not list(new.glob(".*rename"))


def test_rename_refuses_a_source_with_clones(pyl):
    _create(pyl, f"{P}a")
    pyl.ok("copy", "-n", f"{P}a", "-N", f"{P}s", "-s")
    assert pyl("copy", "-n", f"{P}a", "-N", f"{P}r", "-R").returncode == 67
    assert (pyl.lxcpath / f"{P}a").exists()


def test_racing_copies_to_one_name(pyl):
    _create(pyl, f"{P}a")
    _create(pyl, f"{P}b")
    procs = [pyl.popen("copy", "-n", src, "-N", f"{P}x", stdout=-1, stderr=-1) for src in (f"{P}a", f"{P}b")]
    results = [(p.wait(timeout=60), p.stderr.read().decode()) for p in procs]
    for p in procs:
        p.stdout.close()
        p.stderr.close()
    codes = sorted(rc for rc, _ in results)
    assert codes[0] == 0 and codes[1] in (68, 75), results
    loser = next(err for rc, err in results if rc != 0)
    assert "already exists" in loser or "another pyl command" in loser
    assert pyl.ok("ls", "-1").stdout.split().count(f"{P}x") == 1
    assert not (pyl.lxcpath / f"{P}x" / "partial").exists()


def test_crashed_copy_is_never_visible(pyl):
    """A copy killed halfway leaves a locked-then-orphaned partial marker: the name is free again."""
    _create(pyl, f"{P}a")
    half = pyl.lxcpath / f"{P}h"
    half.mkdir()
    (half / "config.toml").write_text("")
    (half / "partial").write_text("")
    assert f"{P}h" not in pyl.ok("ls", "-1").stdout.split()
    pyl.ok("copy", "-n", f"{P}a", "-N", f"{P}h")
    assert _toml(half)["uts"]["name"] == f"{P}h"


def test_snapshot_restore_list_destroy(pyl, tmp_path):
    src = _create(pyl, f"{P}a")
    (src / "rootfs" / "root" / "state").write_text("v1\n")
    (tmp_path / "note").write_text("before the upgrade\n")
    pyl.ok("snapshot", "-n", f"{P}a", "-c", str(tmp_path / "note"))
    pyl.ok("snapshot", f"{P}a")
    snaps = src / "snaps"
    ts = (snaps / "snap0" / "ts").read_text()
    assert len(ts) == 19 and ts[4] == ts[7] == ts[13] == ts[16] == ":" and ts[10] == " "
    assert (snaps / "snap0" / "comment").read_text() == "before the upgrade\n"
    assert _toml(snaps / "snap0")["uts"]["name"] == f"{P}a"
    assert _toml(snaps / "snap0")["net"]["0"]["hwaddr"] == _toml(src)["net"]["0"]["hwaddr"]

    listing = pyl.ok("snapshot", "-n", f"{P}a", "-L").stdout.splitlines()
    assert listing[0] == f"snap0 ({snaps}) {ts}"
    assert listing[1].startswith(f"snap1 ({snaps}) ")
    assert pyl.ok("snapshot", "-n", f"{P}a", "-L", "-C").stdout.splitlines()[1] == "before the upgrade"
    import json
    assert [s["name"] for s in json.loads(pyl.ok("snapshot", "-n", f"{P}a", "-L", "--json").stdout)] == ["snap0", "snap1"]

    (src / "rootfs" / "root" / "state").write_text("v2\n")
    pyl.ok("snapshot", "-n", f"{P}a", "-r", "snap0")
    assert (src / "rootfs" / "root" / "state").read_text() == "v1\n"
    assert _toml(src)["rootfs"]["path"] == f"dir:{src}/rootfs"
    assert sorted(p.name for p in snaps.iterdir()) == ["snap0", "snap1"]
    assert not (src / "ts").exists() and not (src / ".restore").exists()

    pyl.ok("snapshot", "-n", f"{P}a", "-r", "snap1", f"{P}n")
    new = pyl.lxcpath / f"{P}n"
    assert _toml(new)["uts"]["name"] == f"{P}n" and _toml(new)["rootfs"]["path"] == f"dir:{new}/rootfs"
    assert (new / "rootfs" / "root" / "state").read_text() == "v1\n"

    assert pyl("destroy", "-n", f"{P}a").returncode == 67
    pyl.ok("snapshot", "-n", f"{P}a", "-d", "snap0")
    assert pyl.ok("snapshot", "-n", f"{P}a", "-L").stdout.startswith("snap1 ")
    assert pyl("snapshot", "-n", f"{P}a", "-d", "snap0").returncode == 66
    pyl.ok("snapshot", "-n", f"{P}a", "-d", "ALL")
    assert pyl.ok("snapshot", "-n", f"{P}a", "-L").stdout == "No snapshots\n"
    pyl.ok("snapshot", "-n", f"{P}a")
    assert (snaps / "snap0").is_dir()   # numbering restarts at the first free index


def test_ephemeral_clone_runs_a_command_and_vanishes(pyl, tmp_path):
    src = _create(pyl, f"{P}a", tmp_path)
    result = pyl("copy", "-n", f"{P}a", "-e", "-N", f"{P}e", "--", "hostname")
    if result.returncode != 0 and "cannot import name" in result.stderr:
        pytest.fail(f"the container did not start: {result.stderr.strip()}")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"Created {P}e as clone of {P}a", f"{P}e"]
    deadline = time.monotonic() + 10
    while (pyl.lxcpath / f"{P}e").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not (pyl.lxcpath / f"{P}e").exists()
    assert not (src / "lxc_snapshots").exists()
    pyl.ok("destroy", "-n", f"{P}a")


def test_lock_files_go_with_the_containers_and_snapshots_they_guard(pyl):
    # A name's lock file lives as long as its container: destroy takes it away, and a destroy
    # -s also takes the run folder its snapshots' lxcpath (NAME/snaps) had.
    from lxctools.paths import Layout
    src = _create(pyl, f"{P}a")
    pyl.ok("snapshot", "-n", f"{P}a")
    pyl.ok("snapshot", "-n", f"{P}a")
    snaps_run = Path(Layout(src / "snaps", pyl.rundir).run_path())
    assert sorted(os.listdir(snaps_run / "lock")) == ["snap0", "snap1"]
    main_locks = Path(Layout(pyl.lxcpath, pyl.rundir).lock_path(f"{P}a")).parent
    assert (main_locks / f"{P}a").exists()
    assert pyl("start", "-n", f"{P}nosuch").returncode != 0  # a typo leaves no file either
    pyl.ok("destroy", "-n", f"{P}a", "-s")
    assert os.listdir(main_locks) == []
    assert not snaps_run.exists()
