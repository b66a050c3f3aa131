"""What admins at a shell and their cron jobs do to pyl that the happy path never does: odd
umasks, files where folders should be, stray folders, signals halfway, options racing each
other. Every case ends in one clear line and a README exit code, and nothing half-made."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from tests.conftest import NO_NET, requires_busybox, requires_root

pytestmark = [requires_root, requires_busybox]


def make(pyl, name: str = "c1", *extra: str) -> None:
    pyl.ok("create", "-n", name, "-t", "busybox", "-f", NO_NET, *extra)


def one_line(text: str) -> bool:
    return len([line for line in text.splitlines() if "hint:" not in line]) == 1


# ---- the supervisor outlives any timeout ---------------------------------------------------------

def test_a_wait_the_cli_refuses_never_reaches_the_supervisor_and_it_survives_one_that_would(pyl):
    make(pyl)
    pyl.ok("start", "-n", "c1")
    for value in ("inf", "nan", "1e400", "99999999999999999999"):
        r = pyl("wait", "-n", "c1", "-s", "STOPPED", "-t", value)
        assert r.returncode == 64 and one_line(r.stderr), r.stderr
        r = pyl("stop", "-n", "c1", "-t", value)
        assert r.returncode == 64 and one_line(r.stderr), r.stderr
    before = pyl.supervisor_pids()
    # A client of the socket may still send one (the CLI's check is not the only gate).
    from lxctools.monitor.client import connect
    from lxctools.paths import Layout
    layout = Layout(pyl.lxcpath, pyl.rundir)
    with connect(layout, start=False) as conn:
        conn.send({"op": "wait", "name": "c1", "states": ["STOPPED"], "timeout": 1e300})
        time.sleep(0.3)  # the supervisor's loop goes round with that deadline pending
        assert pyl.ok("attach", "-n", "c1", "--", "true").returncode == 0
    assert pyl.supervisor_pids() == before  # the same supervisor: it never died
    pyl.ok("stop", "-n", "c1", "-k")


# ---- stop and freeze -----------------------------------------------------------------------------

def test_kill_after_a_nokill_stop_gave_up(pyl):
    make(pyl)
    pyl.ok("start", "-n", "c1", "-s", "lxc.signal.halt=SIGCONT")  # a halt signal init ignores
    r = pyl("stop", "-n", "c1", "-t", "0.3", "--nokill")
    assert r.returncode == 76, r.stderr
    r = pyl("stop", "-n", "c1", "-k", timeout=20)
    assert r.returncode == 0, r.stderr
    assert pyl.ok("info", "-n", "c1", "-s", "-H").stdout == "STOPPED\n"


def test_freeze_is_refused_while_a_stop_shuts_the_container_down(pyl):
    make(pyl)
    # an init that takes its time over the halt signal: the stop is pending for a while
    pyl.ok("start", "-n", "c1", "-s", "lxc.signal.halt=SIGCONT")
    stop = pyl.popen("stop", "-n", "c1", "-t", "3", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        time.sleep(0.5)
        r = pyl("freeze", "-n", "c1")
        assert r.returncode == 67 and "stop" in r.stderr, r.stderr
    finally:
        stop.wait(30)
    assert stop.returncode == 0
    assert pyl.ok("info", "-n", "c1", "-s", "-H").stdout == "STOPPED\n"
    pyl.ok("start", "-n", "c1")  # and a freeze works again once it runs again
    pyl.ok("freeze", "-n", "c1")
    pyl.ok("stop", "-n", "c1", "-k")


# ---- files and folders that are not what they should be ----------------------------------------

def test_an_lxcpath_that_is_a_file(pyl, tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("")
    for path in (afile, afile / "sub"):
        r = pyl("create", "-P", str(path), "-n", "c1", "-t", "busybox", "-f", NO_NET)
        assert r.returncode == 66 and one_line(r.stderr) and "not a directory" in r.stderr, r.stderr
    make(pyl)
    r = pyl("copy", "-n", "c1", "-N", "c2", "-p", str(afile))
    assert r.returncode == 66 and one_line(r.stderr), r.stderr
    assert afile.read_text() == ""


def test_permission_denied_is_exit_77(pyl, tmp_path):
    lxcpath = tmp_path / "theirs"
    lxcpath.mkdir(mode=0o755)
    rundir = tmp_path / "run"
    rundir.mkdir(mode=0o777)
    env = dict(pyl.env, PYL_RUNDIR=str(rundir), HOME="/nonexistent")
    argv = pyl.argv("create", "-n", "c1", "-t", "busybox", "-f", NO_NET)
    argv[argv.index(str(pyl.lxcpath))] = str(lxcpath)
    os.chmod(tmp_path, 0o755)
    r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *argv],
                       capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 77 and one_line(r.stderr) and "Permission denied" in r.stderr, r.stderr


def test_a_copy_onto_an_existing_name_names_that_name(pyl):
    make(pyl)
    make(pyl, "c2")
    r = pyl("copy", "-n", "c1", "-N", "c2")
    assert r.returncode == 68 and "c2" in r.stderr.split("already exists")[0].split("pyl-copy: c1:")[-1], r.stderr


def test_folders_that_are_no_container_name_are_not_listed_and_stop_nothing(pyl):
    make(pyl)
    config = (pyl.lxcpath / "c1" / "config.toml").read_text()
    for odd in ("bad name", "héllo", "nl\nx", "-dash"):
        (pyl.lxcpath / odd).mkdir()
        (pyl.lxcpath / odd / "config.toml").write_text(config)
    assert pyl.ok("ls").stdout == "c1\n"
    assert [row["name"] for row in json.loads(pyl.ok("ls", "--json").stdout)] == ["c1"]
    pyl.ok("copy", "-n", "c1", "-N", "c2")
    subprocess.run(["sed", "-i", "s/^\\[lxc\\]$/[lxc]\\nstart.auto = 1/", str(pyl.lxcpath / "c1" / "config.toml")],
                   check=True)
    r = pyl("autostart", "-L", "-a", "-A")
    assert r.returncode == 0 and r.stdout.split() == ["c1", "0", "c2", "0"], r.stderr + r.stdout


def test_a_umask_of_077_still_makes_a_root_every_user_can_enter(pyl):
    argv = pyl.argv("create", "-n", "c1", "-t", "busybox", "-f", NO_NET)
    subprocess.run(["sh", "-c", 'umask 077; exec "$@"', "sh", *argv], env=pyl.env, check=True, timeout=60)
    assert (pyl.lxcpath / "c1" / "rootfs").stat().st_mode & 0o777 == 0o755
    pyl.ok("start", "-n", "c1")
    r = pyl("attach", "-n", "c1", "-u", "1000", "-g", "1000", "--", "/bin/ls", "/")
    assert r.returncode == 0 and "bin" in r.stdout, r.stderr
    pyl.ok("stop", "-n", "c1", "-k")


@pytest.mark.parametrize("tool", ["attach", "execute"])
@pytest.mark.parametrize("option", [("-u", "-1"), ("-g", "-5"), ("-u", "4294967295"), ("-g", "99999999999")])
def test_an_impossible_uid_or_gid_is_a_usage_error_named_as_typed(pyl, tool, option):
    """pyl-execute said 78 and '-s lxc.init.uid=-1', an option the user never typed; pyl-attach
    said 64 and '-u -1'. Both now say the latter, before anything starts."""
    make(pyl)
    r = pyl(tool, "-n", "c1", *option, "--", "true")
    assert r.returncode == 64 and one_line(r.stderr) and f"{option[0]} {option[1]}:" in r.stderr, r.stderr
    assert "lxc.init" not in r.stderr
    assert pyl.ok("info", "-n", "c1", "-s", "-H").stdout == "STOPPED\n"


# ---- killed halfway ------------------------------------------------------------------------------

def test_half_made_snapshots_are_not_snapshots(pyl):
    make(pyl)
    snaps = pyl.lxcpath / "c1" / "snaps"
    (snaps / "snap0").mkdir(parents=True)
    (snaps / "snap0" / "partial").write_text("")   # what a pyl-snapshot killed halfway leaves
    (snaps / "snap0" / "rootfs").mkdir()
    assert pyl.ok("snapshot", "-n", "c1", "-L").stdout == "No snapshots\n"
    assert not (snaps / "snap0").exists()  # the next look cleaned it up
    (snaps / "snap0").mkdir()
    (snaps / "snap0" / "partial").write_text("")
    pyl.ok("snapshot", "-n", "c1")  # the leftover goes first: its index is the new snapshot's
    assert [line.split()[0] for line in pyl.ok("snapshot", "-n", "c1", "-L").stdout.splitlines()] == ["snap0"]
    pyl.ok("snapshot", "-n", "c1", "-d", "ALL")
    (snaps / "snap0").mkdir()
    (snaps / "snap0" / "partial").write_text("")
    pyl.ok("destroy", "-n", "c1")  # no snapshot to refuse for
    assert not (pyl.lxcpath / "c1").exists()


def test_a_partial_folder_without_a_config_is_reaped_when_looked_at(pyl):
    half = pyl.lxcpath / "c1"
    half.mkdir()
    (half / "partial").write_text("")
    (half / "rootfs").mkdir()
    assert pyl("info", "-n", "c1").returncode == 66
    assert not half.exists()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_a_create_terminated_while_its_template_runs_leaves_nothing(pyl, tmp_path, sig):
    template = tmp_path / "slow"
    template.write_text("#!/bin/sh\nfor a; do case $a in --rootfs=*) R=${a#--rootfs=};; esac; done\n"
                        "mkdir -p $R/bin; touch $R/bin/half; exec sleep 30\n")
    template.chmod(0o755)
    create = pyl.popen("create", "-n", "c1", "-t", str(template), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while not (pyl.lxcpath / "c1" / "rootfs" / "bin" / "half").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    create.send_signal(sig)
    create.wait(10)
    assert create.returncode == 128 + sig
    assert not (pyl.lxcpath / "c1").exists()
    out = subprocess.run(["pgrep", "-f", str(template)], capture_output=True, text=True).stdout
    assert out == ""  # the template went with it


# ---- options that name files ---------------------------------------------------------------------

def test_a_pidfile_that_cannot_be_written_is_said_before_anything_starts(pyl):
    make(pyl)
    r = pyl("start", "-n", "c1", "-p", "/nonexistent/dir/pid")
    assert r.returncode == 66 and one_line(r.stderr) and "/nonexistent/dir/pid" in r.stderr, r.stderr
    assert pyl.ok("info", "-n", "c1", "-s", "-H").stdout == "STOPPED\n"


def test_a_pty_log_that_cannot_be_opened_is_one_line(running):
    r = running("attach", "-n", "c1", "--pty", "-L", "/nonexistent/dir/log", "--", "true")
    assert r.returncode == 66 and one_line(r.stderr) and "/nonexistent/dir/log" in r.stderr, r.stderr


def test_a_relative_console_log_is_the_callers_and_a_bad_one_is_said(pyl, tmp_path):
    make(pyl)
    subprocess.run(pyl.argv("start", "-n", "c1", "-L", "console.log"), env=pyl.env, cwd=tmp_path, check=True,
                   timeout=60)
    deadline = time.monotonic() + 10
    while not (tmp_path / "console.log").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert (tmp_path / "console.log").exists()
    pyl.ok("stop", "-n", "c1", "-k")
    r = pyl.ok("start", "-n", "c1", "-L", "/nonexistent/dir/console.log")
    assert "/nonexistent/dir/console.log" in r.stderr and one_line(r.stderr), r.stderr
    pyl.ok("stop", "-n", "c1", "-k")


# ---- output for scripts ------------------------------------------------------------------------------

def test_json_is_the_same_shape_running_or_stopped(pyl):
    make(pyl)
    stopped = json.loads(pyl.ok("info", "-n", "c1", "--json").stdout)
    ls_stopped = json.loads(pyl.ok("ls", "--json").stdout)[0]
    pyl.ok("start", "-n", "c1")
    running = json.loads(pyl.ok("info", "-n", "c1", "--json").stdout)
    ls_running = json.loads(pyl.ok("ls", "--json").stdout)[0]
    pyl.ok("stop", "-n", "c1", "-k")
    assert sorted(stopped) == sorted(running)
    assert stopped["ips"] == [] and stopped["cpu_ns"] is None
    assert sorted(ls_stopped) == sorted(ls_running)
    for key in ("ram", "swap", "cpu"):
        assert ls_running[key] is None or isinstance(ls_running[key], int), (key, ls_running[key])


def test_closed_stdout_is_not_an_internal_error(running):
    for argv in (["ls", "-f"], ["info", "-n", "c1"], ["ps", "-n", "c1"], ["ls", "--json"]):
        r = subprocess.run(["sh", "-c", '"$@" >&-', "sh", *running.argv(*argv)], env=running.env,
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0 and r.stderr == "", (argv, r.stderr)


def test_console_of_a_container_adopted_after_its_supervisor_died_says_why_it_has_none(running):
    r = running("console", "-n", "c1", "-e", "", "-t", "0")
    assert r.returncode == 64 and "invalid escape" in r.stderr, r.stderr
    for pid in running.supervisor_pids():
        os.kill(pid, signal.SIGKILL)
    time.sleep(0.2)
    assert running.ok("info", "-n", "c1", "-s", "-H").stdout == "RUNNING\n"  # a new supervisor adopts it
    r = running("console", "-n", "c1", "-t", "0")
    assert r.returncode == 67 and "lost" in r.stderr and "lxc.tty.max" not in r.stderr, r.stderr


@pytest.mark.parametrize("mangled", ['[1, 2]', '{"pid": 1, "state": "BOGUS"}', '{"pid": "1"}', "{"])
def test_a_state_file_edited_into_another_shape_is_no_crash_for_a_reader_or_an_adopting_supervisor(running, mangled):
    from lxctools.paths import Layout
    path = Layout(running.lxcpath, running.rundir).state_path("c1")
    for pid in running.supervisor_pids():
        os.kill(pid, signal.SIGKILL)
    time.sleep(0.2)
    with open(path) as f:
        record = f.read()
    with open(path, "w") as f:
        f.write(mangled)
    try:
        r = running("info", "-n", "c1", "-s", "-H")
        assert r.returncode == 0 and r.stdout == "STOPPED\n" and r.stderr == "", r.stderr
        # a new supervisor (for c2's start) leaves c1 alone, and starts and serves
        make(running, "c2")
        running.ok("start", "-n", "c2")
        assert running.ok("info", "-n", "c2", "-s", "-H").stdout == "RUNNING\n"
        running.ok("stop", "-n", "c2", "-k")
    finally:
        for pid in running.supervisor_pids():
            os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
        with open(path, "w") as f:  # the record back: the fixture's stop adopts c1 and stops it
            f.write(record)


@pytest.mark.parametrize("key", ["cgroup.procs", "cgroup.threads"])
def test_pyl_cgroup_never_moves_a_host_process_into_the_container(running, key):
    # A throwaway host process: moved in, the container's stop would SIGKILL it (pid 1 too).
    host = subprocess.Popen(["sleep", "60"])
    try:
        r = running("cgroup", "-n", "c1", key, str(host.pid))
        assert r.returncode == 64 and one_line(r.stderr) and "pyl-attach" in r.stderr, r.stderr
        with open(f"/proc/{host.pid}/cgroup") as f:
            assert "pyl.payload" not in f.read()
    finally:
        host.kill()
        host.wait()
    assert running("cgroup", "-n", "c1", "cgroup.procs").returncode in (0, 66)  # reading stays allowed


def test_console_stays_connected_while_the_ttys_getty_respawns(running):
    """A logout ends getty's hold on the tty until init respawns it: no slave open, the master
    reads EIO, and pyl-console used to take that for the end and leave."""
    import pty
    import select
    argv = running.argv("console", "-n", "c1", "-t", "1")
    pid, fd = pty.fork()
    if pid == 0:
        os.execve(argv[0], argv, running.env)

    def read_until(needle: bytes, timeout: float) -> bytes:
        data, deadline = b"", time.monotonic() + timeout
        while needle not in data and time.monotonic() < deadline:
            if select.select([fd], [], [], 0.3)[0]:
                try:
                    data += os.read(fd, 4096)
                except OSError:
                    return data + b"<EIO>"
            else:
                os.write(fd, b"\r")
        return data

    try:
        assert b"login:" in read_until(b"login:", 15)
        running.ok("attach", "-n", "c1", "--", "sh", "-c", "kill $(pidof getty)")  # init respawns them
        again = read_until(b"login:", 15)
        assert b"<EIO>" not in again and b"login:" in again, again
        assert os.waitpid(pid, os.WNOHANG) == (0, 0)  # still connected
        os.write(fd, b"\x01q")
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        os.close(fd)
