"""pyl-create / pyl-destroy / pyl-ls on real templates: protocol, failures, races, interruption."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from tests.conftest import NO_NET, ROOT, requires_busybox, requires_root

pytestmark = [requires_root, requires_busybox]



def test_create_busybox_config_is_toml_with_lxc_keys(pyl):
    pyl.ok("create", "-n", "c1", "-t", "busybox", "-f", NO_NET)
    text = (pyl.lxcpath / "c1" / "config.toml").read_text()
    assert "# Template used to create this container:" in text
    assert not (pyl.lxcpath / "c1" / "config").exists()
    assert not (pyl.lxcpath / "c1" / "partial").exists()
    values = pyl.ok("info", "-n", "c1", "-c", "lxc.uts.name", "-c", "lxc.signal.halt").stdout
    assert values == "lxc.uts.name = c1\nlxc.signal.halt = SIGUSR1\n"
    assert (pyl.lxcpath / "c1" / "rootfs" / "sbin" / "init").exists()


def test_create_refuses_existing_and_touches_nothing(pyl):
    pyl.ok("create", "-n", "c1", "-t", "busybox", "-f", NO_NET)
    before = (pyl.lxcpath / "c1" / "config.toml").read_bytes()
    r = pyl("create", "-n", "c1", "-t", "busybox", "-f", NO_NET)
    assert r.returncode == 68 and "already exists" in r.stderr
    assert (pyl.lxcpath / "c1" / "config.toml").read_bytes() == before


@pytest.mark.parametrize("name,code", [("../x", 65), ("", 65), ("x" * 65, 65), ("-x", 64), ("a/b", 65)])
def test_bad_names(pyl, name, code):
    r = pyl("create", "-n", name, "-t", "busybox")
    assert r.returncode == code, r.stderr
    assert len(r.stderr.strip().splitlines()) <= 2 and "Traceback" not in r.stderr
    assert list(pyl.lxcpath.iterdir()) == []


def test_missing_template_and_unknown_template(pyl):
    r = pyl("create", "-n", "c1")
    assert r.returncode == 64 and "template" in r.stderr
    r = pyl("create", "-n", "c1", "-t", "nosuchtemplate")
    assert r.returncode == 66 and "unknown template" in r.stderr
    assert list(pyl.lxcpath.iterdir()) == []


def test_failing_template_leaves_nothing(pyl, tmp_path):
    tpl = tmp_path / "half"
    tpl.write_text("#!/bin/sh\nfor a; do case $a in --rootfs=*) R=${a#--rootfs=};; esac; done\n"
                   "mkdir -p $R/etc; echo partial > $R/etc/file\necho 'lxc.uts.name = half' >> ${R%/rootfs}/config\n"
                   "echo 'template broke' >&2; exit 3\n")
    tpl.chmod(0o755)
    r = pyl("create", "-n", "c1", "-t", str(tpl))
    assert r.returncode != 0 and "failed" in r.stderr
    assert not (pyl.lxcpath / "c1").exists()
    # --dir elsewhere: the folders made for it go too, up to the first that was already there
    outside = tmp_path / "srv"
    outside.mkdir()
    r = pyl("create", "-n", "c1", "-t", str(tpl), "--dir", str(outside / "new" / "c1" / "rootfs"))
    assert r.returncode != 0 and "failed" in r.stderr
    assert not (pyl.lxcpath / "c1").exists() and list(outside.iterdir()) == []


def test_lxc_template_protocol_and_lxc_format_append(pyl, tmp_path):
    tpl = tmp_path / "lxc-mini"
    tpl.write_text("#!/bin/sh\nfor a; do case $a in --path=*) P=${a#--path=};; --name=*) N=${a#--name=};; "
                   "--rootfs=*) R=${a#--rootfs=};; esac; done\n"
                   "cp -a /bin/busybox $R/ 2>/dev/null || cp /bin/busybox $R/\n"
                   "echo \"$@\" > $P/args\n"
                   "cat >> $P/config <<EOF\nlxc.signal.halt = SIGTERM\nlxc.group = web\nlxc.group = onboot\nEOF\n")
    tpl.chmod(0o755)
    pyl.ok("create", "-n", "c1", "-t", str(tpl), "-f", NO_NET, "--", "--extra", "arg")
    args = (pyl.lxcpath / "c1" / "args").read_text().split()
    assert args[:3] == [f"--path={pyl.lxcpath}/c1", "--name=c1", f"--rootfs={pyl.lxcpath}/c1/rootfs"]
    assert args[3:] == ["--extra", "arg"]
    out = json.loads(pyl.ok("ls", "--json").stdout)
    assert out[0]["name"] == "c1" and out[0]["groups"] == ["web", "onboot"]


def test_concurrent_creates_one_wins(pyl):
    procs = [pyl.popen("create", "-n", "race", "-t", "busybox", "-f", NO_NET,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    codes = sorted(p.wait(timeout=60) for p in procs)
    assert codes[0] == 0 and codes[1] in (68, 75), codes
    assert pyl.ok("ls", "-1").stdout == "race\n"
    pyl.ok("start", "-n", "race")
    pyl.ok("stop", "-n", "race", "-k")


def test_concurrent_destroy_and_start(pyl):
    pyl.ok("create", "-n", "c1", "-t", "busybox", "-f", NO_NET)
    a = pyl.popen("destroy", "-n", "c1", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    b = pyl.popen("start", "-n", "c1", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    ra, rb = a.wait(timeout=60), b.wait(timeout=60)
    # one of them wins; the other is refused cleanly (busy, not found or wrong state)
    assert 0 in (ra, rb)
    assert ra in (0, 67, 75) and rb in (0, 66, 75), (ra, rb)
    if rb == 0:
        pyl.ok("stop", "-n", "c1", "-k")
        pyl.ok("destroy", "-n", "c1")


def test_killed_create_is_cleaned_up(pyl, tmp_path):
    slow = tmp_path / "slow"
    slow.write_text("#!/bin/sh\nsleep 30\n")
    slow.chmod(0o755)
    proc = pyl.popen("create", "-n", "c1", "-t", str(slow), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                     start_new_session=True)
    deadline = time.monotonic() + 10
    while not (pyl.lxcpath / "c1" / "partial").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    # the half-made container is invisible, and the next command that looks removes it
    assert pyl.ok("ls", "-1").stdout == ""
    pyl.ok("create", "-n", "c1", "-t", "busybox", "-f", NO_NET)
    assert pyl.ok("ls", "-1").stdout == "c1\n"


def test_a_destroy_killed_halfway_is_finished_by_the_next_one(pyl):
    # A destroy moves the folder out of sight (.NAME.destroying-PID), then deletes it. Killed
    # in between, it leaves that hidden folder; the next destroy in the lxcpath removes it, but
    # not while a destroy of that name (its lock) is still at work.
    import fcntl

    from lxctools.paths import Layout
    for name in ("c1", "c2"):
        pyl.ok("create", "-n", name, "-t", "none", "-f", NO_NET)
    leftover = pyl.lxcpath / ".c0.destroying-4242"
    (leftover / "rootfs" / "etc").mkdir(parents=True)
    (leftover / "rootfs" / "etc" / "hostname").write_text("c0\n")
    at_work = pyl.lxcpath / ".c9.destroying-4243"
    at_work.mkdir()
    lock_path = Layout(pyl.lxcpath, pyl.rundir).lock_path("c9")
    os.makedirs(os.path.dirname(lock_path), exist_ok=True)
    lock = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        pyl.ok("destroy", "-n", "c1")
        assert not leftover.exists() and at_work.exists()
    finally:
        os.close(lock)
    pyl.ok("destroy", "-n", "c2")
    assert sorted(os.listdir(pyl.lxcpath)) == []


def test_a_busy_container_is_one_clear_refusal(pyl):
    """Another pyl command holds the container's lock (a racing cron job): exit 75, one line
    naming the container once."""
    import fcntl

    from lxctools.paths import Layout
    pyl.ok("create", "-n", "c1", "-t", "none", "-f", NO_NET)
    lock_path = Layout(pyl.lxcpath, pyl.rundir).lock_path("c1")
    lock = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for tool, operation in (("destroy", "destroy"), ("start", "start")):
            r = pyl(tool, "-n", "c1")
            assert r.returncode == 75, r.stderr
            assert r.stderr.splitlines()[0] == (f"pyl-{tool}: c1: cannot {operation}: another pyl command "
                                                "is working on this container")
    finally:
        os.close(lock)
    pyl.ok("destroy", "-n", "c1")


def test_destroy_running_needs_force_and_never_follows_symlinks(pyl, tmp_path):
    pyl.ok("create", "-n", "c1", "-t", "busybox", "-f", NO_NET)
    outside = tmp_path / "precious"
    outside.mkdir()
    (outside / "keep").write_text("keep me")
    os.symlink(outside, pyl.lxcpath / "c1" / "rootfs" / "link-out")
    pyl.ok("start", "-n", "c1")
    r = pyl("destroy", "-n", "c1")
    assert r.returncode == 67 and "RUNNING" in r.stderr
    pyl.ok("destroy", "-n", "c1", "-f")
    assert not (pyl.lxcpath / "c1").exists()
    assert (outside / "keep").read_text() == "keep me"
    assert pyl("destroy", "-n", "c1").returncode == 66


def test_config_errors_name_file_line_and_suggest(pyl, tmp_path):
    bad = tmp_path / "bad.conf"
    bad.write_text("lxc.include = " + str(ROOT / "configs" / "common.toml") + "\nlxc.uts.nmae = x\n")
    r = pyl("create", "-n", "c1", "-t", "busybox", "-f", str(bad))
    assert r.returncode == 78
    assert f"{bad}:2" in r.stderr and "lxc.uts.name" in r.stderr
    bad.write_text("lxc.tty.max = lots\n")
    r = pyl("create", "-n", "c1", "-t", "busybox", "-f", str(bad))
    assert r.returncode == 78 and f"{bad}:1" in r.stderr
    assert list(pyl.lxcpath.iterdir()) == []


def test_lxc_made_container_is_listed_and_started(pyl):
    """A folder holding an LXC-format `config` (what lxc-create writes) works as a container."""
    pyl.ok("create", "-n", "tmpl", "-t", "busybox", "-f", NO_NET)
    lxc_text = pyl.ok("update-config", "-n", "tmpl", "--to", "lxc").stdout
    folder = pyl.lxcpath / "legacy"
    folder.mkdir()
    os.rename(pyl.lxcpath / "tmpl" / "rootfs", folder / "rootfs")
    lxc_text = lxc_text.replace(f"{pyl.lxcpath}/tmpl/rootfs", f"{folder}/rootfs")
    (folder / "config").write_text(lxc_text.replace("lxc.uts.name = tmpl", "lxc.utsname = legacy"))
    pyl.ok("destroy", "-n", "tmpl")
    assert pyl.ok("ls", "-1").stdout == "legacy\n"
    pyl.ok("start", "-n", "legacy")
    assert pyl.ok("attach", "-n", "legacy", "--", "hostname").stdout == "legacy\n"
    pyl.ok("stop", "-n", "legacy", "-k")
    converted = pyl.ok("update-config", "-c", str(folder / "config"), "--to", "toml").stdout
    assert "[lxc.uts]" in converted and 'name = "legacy"' in converted


def test_ls_formats(pyl):
    for name in ("b2", "a1"):
        pyl.ok("create", "-n", name, "-t", "busybox", "-f", NO_NET)
    pyl.ok("start", "-n", "b2")
    assert pyl.ok("ls").stdout == "a1\nb2\n"
    fancy = pyl.ok("ls", "-f").stdout.splitlines()
    assert fancy[0].split() == ["NAME", "STATE", "AUTOSTART", "GROUPS", "IPV4", "IPV6", "UNPRIVILEGED"]
    assert fancy[1].split()[:2] == ["a1", "STOPPED"] and fancy[2].split()[:2] == ["b2", "RUNNING"]
    assert pyl.ok("ls", "--running", "-1").stdout == "b2\n"
    assert pyl.ok("ls", "--stopped", "-1").stdout == "a1\n"
    assert pyl.ok("ls", "-1", "b").stdout == "b2\n"
    rows = json.loads(pyl.ok("ls", "--json").stdout)
    assert rows[1]["state"] == "RUNNING" and rows[1]["pid"] > 0 and rows[1]["ram"] > 0
    assert pyl("ls", "-F", "name,bogus").returncode == 64
    pyl.ok("stop", "-n", "b2", "-k")


def test_a_template_gets_stdio_and_nothing_else(pyl, tmp_path):
    # pyl-create holds the container's lock and its `partial` marker flock while the template
    # runs: a daemon the template starts must not inherit them, nor an fd pyl-create's own
    # caller leaked to it (here: an inheritable one on fd 7).
    template = tmp_path / "fds"
    template.write_text('#!/bin/sh\nls -l /proc/$$/fd > "$PWD/fds"\n')
    template.chmod(0o755)
    leaked = os.open(tmp_path, os.O_RDONLY)
    os.set_inheritable(leaked, True)
    try:
        r = subprocess.run([*pyl.argv("create", "-n", "c1", "-t", str(template), "-f", NO_NET)], env=pyl.env,
                           capture_output=True, text=True, timeout=60, pass_fds=(leaked,))
    finally:
        os.close(leaked)
    assert r.returncode == 0, r.stderr
    targets = [line.split(" -> ")[1] for line in (pyl.lxcpath / "c1" / "fds").read_text().splitlines()
               if " -> " in line]
    # What is left is the shell's own: stdio, the script it reads, its saved stdout.
    assert all(t in ("/dev/null", str(template), str(pyl.lxcpath / "c1" / "fds")) or t.startswith("pipe:")
               for t in targets), targets
    assert str(tmp_path) not in targets


def test_a_template_runs_with_default_signal_dispositions(pyl, tmp_path):
    # CPython ignores SIGPIPE; exec keeps ignored signals: `yes | head` must end quietly.
    template = tmp_path / "sig"
    template.write_text('#!/bin/sh\ngrep -E "^SigIgn" /proc/$$/status > "$PWD/sig"\n'
                        'yes | head -n 1 >/dev/null 2>"$PWD/err"\n')
    template.chmod(0o755)
    pyl.ok("create", "-n", "c1", "-t", str(template), "-f", NO_NET)
    ignored = int((pyl.lxcpath / "c1" / "sig").read_text().split()[1], 16)
    assert not ignored & (1 << (signal.SIGPIPE - 1)) and not ignored & (1 << (signal.SIGXFSZ - 1))
    assert (pyl.lxcpath / "c1" / "err").read_text() == ""


def test_destroy_with_a_broken_config_refuses_and_says_what_to_do(pyl):
    pyl.ok("create", "-n", "c1", "-t", "busybox", "-f", NO_NET)
    cfg = pyl.lxcpath / "c1" / "config.toml"
    cfg.write_text(cfg.read_text() + "\n[lxc.nope]\nkey = 1\n")
    r = pyl("destroy", "-n", "c1")
    assert r.returncode == 78 and "unknown key" in r.stderr and "hint: fix the config first" in r.stderr
    assert (pyl.lxcpath / "c1" / "rootfs" / "bin" / "busybox").exists()  # nothing lost
    cfg.write_text(cfg.read_text().replace("\n[lxc.nope]\nkey = 1\n", ""))
    pyl.ok("destroy", "-n", "c1")


def test_a_create_killed_outright_takes_its_template_along(pyl, tmp_path):
    # Only pyl-create is killed (not its process group): an orphaned template went on writing
    # into the folder the next command reaps.
    slow = tmp_path / "slow"
    marker = tmp_path / "template-pid"
    slow.write_text(f"#!/bin/sh\necho $$ > {marker}\nexec sleep 30\n")
    slow.chmod(0o755)
    proc = pyl.popen("create", "-n", "c1", "-t", str(slow), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while not marker.exists() or not marker.read_text().strip():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    template = int(marker.read_text())
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 5
    while os.path.exists(f"/proc/{template}") and "sleep" in open(f"/proc/{template}/comm").read():
        assert time.monotonic() < deadline, "the template outlived pyl-create"
        time.sleep(0.05)
    assert pyl.ok("ls", "-1").stdout == ""


def test_template_help_creates_nothing(pyl):
    r = pyl.ok("create", "-n", "c1", "-t", "busybox", "--", "--help")
    assert "--rootfs" in r.stdout
    assert not (pyl.lxcpath / "c1").exists()
