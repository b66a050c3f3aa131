"""Who reads whose rootfs (lxc_snapshots / lxc_rdepends) as containers come and go: a source
may be destroyed once no clone needs it, and never while one does."""

from __future__ import annotations

import os
import subprocess
import threading

from tests.conftest import NO_NET, requires_busybox, requires_root

pytestmark = [requires_root, requires_busybox]

# Names are per test process: cgroups are global, other suites may run beside.
P = f"dp{os.getpid() % 100000}"


def _listed(pyl, owner: str) -> list[str]:
    path = pyl.lxcpath / owner / "lxc_snapshots"
    return path.read_text().split("\n")[1::2] if path.exists() else []


def test_destroying_a_clone_with_its_snapshots_frees_the_source(pyl):
    base, clone = f"{P}b", f"{P}s"
    pyl.ok("create", "-n", base, "-t", "busybox", "-f", NO_NET)
    pyl.ok("copy", "-n", base, "-N", clone, "-s")
    pyl.ok("snapshot", "-n", clone)  # snap0 is an overlay on base's rootfs too
    assert sorted(_listed(pyl, base)) == sorted([clone, "snap0"])
    pyl.ok("destroy", "-n", clone, "-s")
    assert _listed(pyl, base) == []
    pyl.ok("destroy", "-n", base)  # nothing depends on it any more: no -s needed
    assert not (pyl.lxcpath / base).exists()


def test_an_entry_whose_clone_is_gone_does_not_hold_the_source(pyl):
    # A destroy killed halfway (or a clone folder removed by hand) leaves its entry behind.
    base = f"{P}b"
    pyl.ok("create", "-n", base, "-t", "busybox", "-f", NO_NET)
    (pyl.lxcpath / base / "lxc_snapshots").write_text(f"{pyl.lxcpath}\n{P}gone\n")
    pyl.ok("destroy", "-n", base)


def test_a_live_clone_still_holds_the_source(pyl):
    base, clone = f"{P}b", f"{P}s"
    pyl.ok("create", "-n", base, "-t", "busybox", "-f", NO_NET)
    pyl.ok("copy", "-n", base, "-N", clone, "-s")
    r = pyl("destroy", "-n", base)
    assert r.returncode == 67 and "clones" in r.stderr
    assert (pyl.lxcpath / base / "rootfs" / "bin" / "busybox").exists()
    pyl.ok("destroy", "-n", base, "-s")  # -s: the clones first, as lxc-destroy -s
    assert not (pyl.lxcpath / clone).exists() and not (pyl.lxcpath / base).exists()


def test_clones_made_and_destroyed_at_once_are_all_accounted_for(pyl):
    # Registering a new clone and releasing another both rewrite the source's list: under the
    # source's lock, or one of them is lost (a live clone the list forgot lets destroy pull its
    # lower layer away).
    base = f"{P}b"
    pyl.ok("create", "-n", base, "-t", "busybox", "-f", NO_NET)
    for i in range(4):
        pyl.ok("copy", "-n", base, "-N", f"{P}o{i}", "-s")
    errors: list[str] = []

    def run(*args: str) -> None:
        r = pyl(*args)
        if r.returncode != 0:
            errors.append(r.stderr)

    threads = [threading.Thread(target=run, args=("destroy", "-n", f"{P}o{i}")) for i in range(4)]
    threads += [threading.Thread(target=run, args=("copy", "-n", base, "-N", f"{P}n{i}", "-s")) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    made = {f"{P}n{i}" for i in range(4) if (pyl.lxcpath / f"{P}n{i}" / "config.toml").exists()}
    # Every clone that exists is listed. A destroyed one may stay listed (its destroy found the
    # source locked by a copy and did not wait): harmless, lists count only what exists.
    listed = set(_listed(pyl, base))
    assert made <= listed, errors
    assert {n for n in listed if (pyl.lxcpath / n).exists()} == made
    r = pyl("destroy", "-n", base)
    assert (r.returncode == 67) == bool(made)


def test_destroy_s_takes_the_clones_snapshots_too(pyl):
    base, clone = f"{P}b", f"{P}s"
    pyl.ok("create", "-n", base, "-t", "busybox", "-f", NO_NET)
    pyl.ok("copy", "-n", base, "-N", clone, "-s")
    pyl.ok("snapshot", "-n", clone)
    pyl.ok("destroy", "-n", base, "-s")
    assert sorted(os.listdir(pyl.lxcpath)) == []


def test_a_clone_that_cannot_go_is_named(pyl):
    base, clone = f"{P}b", f"{P}s"
    pyl.ok("create", "-n", base, "-t", "busybox", "-f", NO_NET)
    pyl.ok("copy", "-n", base, "-N", clone, "-s")
    (pyl.lxcpath / clone / "config.toml").write_text('[lxc]\nnosuchkey = "1"\n')
    r = pyl("destroy", "-n", base, "-s")
    assert r.returncode == 78 and f"clone {clone}:" in r.stderr.splitlines()[0], r.stderr
    assert (pyl.lxcpath / base / "rootfs" / "bin" / "busybox").exists()


def test_destroy_s_stops_a_running_clone_only_with_f(pyl):
    base, clone = f"{P}b", f"{P}s"
    pyl.ok("create", "-n", base, "-t", "busybox", "-f", NO_NET)
    pyl.ok("copy", "-n", base, "-N", f"{P}a", "-s")  # listed first: still there after the refusal
    pyl.ok("copy", "-n", base, "-N", clone, "-s")
    pyl.ok("start", "-n", clone)
    r = pyl("destroy", "-n", base, "-s")
    assert r.returncode == 67 and f"clone {clone}: cannot destroy: container is RUNNING" in r.stderr, r.stderr
    assert pyl.ok("info", "-n", clone, "-s", "-H").stdout == "RUNNING\n"
    assert (pyl.lxcpath / f"{P}a" / "config.toml").exists()
    pyl.ok("destroy", "-n", base, "-s", "-f")
    assert sorted(os.listdir(pyl.lxcpath)) == []


def test_destroy_removes_immutable_and_append_only_files(pyl):
    # Root in a container keeps CAP_LINUX_IMMUTABLE: chattr +i / +a inside is ordinary. Destroy
    # ended in "internal error" and left the hidden .NAME.destroying-PID folder behind.
    name = f"{P}i"
    pyl.ok("create", "-n", name, "-t", "busybox", "-f", NO_NET)
    rootfs = pyl.lxcpath / name / "rootfs"
    (rootfs / "var" / "locked").mkdir(parents=True)
    (rootfs / "var" / "locked" / "file").write_text("x")
    (rootfs / "var" / "log.txt").write_text("log")
    for flags, path in (("+i", "var/locked/file"), ("+i", "var/locked"), ("+a", "var/log.txt")):
        subprocess.run(["chattr", flags, str(rootfs / path)], check=True)
    pyl.ok("destroy", "-n", name)
    assert os.listdir(pyl.lxcpath) == []


def test_destroy_s_refuses_before_any_clone_is_gone(pyl):
    # Something mounted in the source's folder: the refusal comes first, its clones stay.
    base, clone = f"{P}b", f"{P}s"
    pyl.ok("create", "-n", base, "-t", "busybox", "-f", NO_NET)
    pyl.ok("copy", "-n", base, "-N", clone, "-s")
    mnt = pyl.lxcpath / base / "mnt"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "pyltest", str(mnt)], check=True)
    try:
        r = pyl("destroy", "-n", base, "-s")
        assert r.returncode == 75 and "mounted" in r.stderr, r.stderr
        assert (pyl.lxcpath / clone / "config.toml").exists()
    finally:
        subprocess.run(["umount", str(mnt)], check=True)
    pyl.ok("destroy", "-n", base, "-s")
