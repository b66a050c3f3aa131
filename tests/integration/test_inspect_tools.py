"""pyl-ps, pyl-top, pyl-cgroup, pyl-netstat and pyl-device against a real running busybox container.

Each check compares with what really runs: a `sleep 1000` started with pyl-attach, a listening
`busybox nc`, a limit written and read back, a device node opened from inside. The container has no
lxc.net keys (a private network namespace with only lo), so these tests do not depend on the host's
bridge. The `pyl` fixture's leak check covers processes, mounts, cgroups and pyl* links.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import time

import pytest

from tests.conftest import requires_busybox, requires_root

pytestmark = [requires_root, requires_busybox]

NO_NET_CONFIG = "lxc.include = {root}/configs/common.toml\n"
# Cgroup names (pyl.payload.NAME) are host-wide: another suite may run a "c1" right now.
C = f"ins{os.getpid()}"


def _v1(controller: str) -> str | None:
    path = f"/sys/fs/cgroup/{controller}"
    return path if os.path.isdir(path) and not os.path.exists(f"{path}/cgroup.controllers") else None


@pytest.fixture
def ct(pyl, tmp_path):
    from tests.conftest import ROOT
    config = tmp_path / "nonet.conf"
    config.write_text(NO_NET_CONFIG.format(root=ROOT))
    pyl.ok("create", "-n", C, "-t", "busybox", "-f", str(config))
    pyl.ok("start", "-n", C)
    yield pyl
    pyl("stop", "-n", C, "-k")


def background(pyl, command: str) -> None:
    """Start command inside the container and return at once (its output must not hold our pipes open)."""
    pyl.ok("attach", "-n", C, "--", "sh", "-c", f"{command} </dev/null >/dev/null 2>&1 &")


def wait_for(predicate, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


# ------------------------------------------------------------------ pyl-ps


def test_ps_shows_a_sleep_with_its_pid_inside(ct):
    background(ct, "sleep 1000")

    def find():
        rows = json.loads(ct.ok("ps", "-n", C, "--json").stdout)
        return next((r for r in rows if r["command"] == "sleep 1000"), None)

    row = wait_for(find)
    assert row is not None and row["container"] == C
    assert row["nspid"] != row["pid"]
    # The container's own view agrees on the PID (busybox ps inside reads the container's /proc).
    inside = ct.ok("attach", "-n", C, "--", "ps").stdout
    assert any(line.split()[0] == str(row["nspid"]) and "sleep 1000" in line for line in inside.splitlines()[1:])
    init = json.loads(ct.ok("ps", "-n", C, "--json").stdout)
    assert any(r["nspid"] == 1 for r in init)

    table = ct.ok("ps", "-n", C).stdout.splitlines()
    assert table[0].split()[:3] == ["CONTAINER", "PID", "NSPID"]
    assert all(line.startswith(C + " ") for line in table[1:])
    everything = ct.ok("ps").stdout
    assert any(line.startswith(C + " ") for line in everything.splitlines())
    assert any(line.split()[1] == "1" and not line.startswith(C) for line in everything.splitlines()[1:])
    host_only = ct.ok("ps", "--host").stdout
    assert str(row["pid"]) not in [line.split()[0] for line in host_only.splitlines()[1:]]


def test_ps_asks_the_supervisor_for_the_cgroup_pids(ct):
    """pyl-ps gets the container's PIDs from the supervisor (no cgroup code, dataclasses or
    socket in the client: ~45 ms of a ~75 ms pyl-ps), and lists the same processes without one."""
    background(ct, "sleep 1001")
    assert wait_for(lambda: "sleep 1001" in ct.ok("ps", "-n", C).stdout)

    def rows(without_supervisor: bool) -> tuple[set[str], list[tuple[str, ...]]]:
        rc, out, modules = _in_process(ct, "ps", ["-n", C, "--json"], without_supervisor)
        assert rc == 0
        return modules, sorted((r["container"], r["pid"], r["nspid"], r["command"]) for r in json.loads(out))

    modules, supervised = rows(False)
    assert sorted(modules & {"lxctools.runtime.cgroups", "dataclasses", "socket"}) == []
    local_modules, local = rows(True)
    assert "lxctools.runtime.cgroups" in local_modules
    assert supervised == local and any(r[3] == "sleep 1001" for r in supervised)
    assert all(r[0] == C for r in supervised) and any(r[2] == 1 for r in supervised)


def test_ps_with_ps_options_prefixes_lines(ct):
    out = ct.ok("ps", "-n", C, "--", "-o", "pid,args").stdout.splitlines()
    assert out[0].split() == ["CONTAINER", "PID", "COMMAND"]
    assert len(out) > 1 and all(line.startswith(C + " ") for line in out[1:])
    bad = ct("ps", "-n", C, "--", "-o", "args")
    assert bad.returncode == 64 and "PID" in bad.stderr


def test_ps_of_a_stopped_container_is_an_error(ct):
    ct.ok("create", "-n", "c2", "-t", "none")
    result = ct("ps", "-n", f"{C},c2")
    assert result.returncode == 67 and "'c2' is not running" in result.stderr


# ------------------------------------------------------------------ pyl-netstat


def test_netstat_sees_a_listener_and_its_owner(ct):
    background(ct, "busybox nc -l -p 5555")

    def listener():
        rows = json.loads(ct.ok("netstat", "-n", C, "-l", "-t", "--json").stdout)
        return next((r for r in rows if r["local"].endswith(":5555")), None)

    row = wait_for(listener)
    assert row is not None and row["state"] == "LISTEN" and row["proto"].startswith("tcp")
    assert row["pid"] and row["nspid"] and row["nspid"] != row["pid"] and row["program"] in ("busybox", "nc")
    table = ct.ok("netstat", "-n", C, "-l").stdout
    assert ":5555" in table and f"{row['pid']}/" in table
    # Only the container's namespace: the host has no such listener.
    host = subprocess.run(["ss", "-Htln", "sport = :5555"], capture_output=True, text=True).stdout
    assert ":5555" not in host
    # The host's ss, run in the container's network namespace.
    ss = ct.ok("netstat", "-n", C, "--", "-Htln").stdout
    assert ":5555" in ss
    udp_only = json.loads(ct.ok("netstat", "-n", C, "-u", "--json").stdout)
    assert all(r["proto"].startswith("udp") for r in udp_only)


def test_netstat_of_a_stopped_container(ct):
    ct.ok("stop", "-n", C, "-k")
    result = ct("netstat", "-n", C)
    assert result.returncode == 67


# ------------------------------------------------------------------ pyl-cgroup


@pytest.mark.skipif(_v1("memory") is None and not os.path.exists("/sys/fs/cgroup/cgroup.controllers"),
                    reason="needs a v1 memory hierarchy or a pure v2 host")
def test_cgroup_write_then_read_back(ct):
    key = "memory.limit_in_bytes" if _v1("memory") else "memory.max"
    assert ct.ok("cgroup", "-n", C, key, "268435456").stdout == ""
    assert ct.ok("cgroup", "-n", C, key).stdout == "268435456\n"  # no extra blank line
    assert ct.ok("cgroup", C, key).stdout == "268435456\n"       # name first, as LXC
    bad = ct("cgroup", "-n", C, key, "bogus")
    assert bad.returncode == 1 and f"'{key}'" in bad.stderr and "'bogus'" in bad.stderr
    unknown = ct("cgroup", "-n", C, "nosuchctl.file")
    assert unknown.returncode == 66 and "nosuchctl" in unknown.stderr
    ct.ok("stop", "-n", C, "-k")
    stopped = ct("cgroup", "-n", C, key)
    assert stopped.returncode == 67 and "is not running" in stopped.stderr


def test_ps_asks_once_for_every_running_container(ct, tmp_path):
    """pyl-ps over several containers: one pids request with every name, not one connection
    each; a name the supervisor does not run is left out of its answer, and the answer is
    what each container's own request gives."""
    from tests.conftest import ROOT
    config = tmp_path / "nonet2.conf"
    config.write_text(NO_NET_CONFIG.format(root=ROOT))
    ct.ok("create", "-n", "c2", "-t", "busybox", "-f", str(config))
    ct.ok("start", "-n", "c2")
    try:
        requests, batched, single = _python(ct, (
            "import lxctools.monitor.client as client\n"
            "from lxctools.container import cgroup_pids_of\n"
            "from lxctools.paths import Layout, default_rundir\n"
            "from lxctools.runstate import read_runstate\n"
            "sent = []\n"
            "real = client.Connection.request\n"
            "client.Connection.request = lambda self, msg: sent.append(msg['op']) or real(self, msg)\n"
            f"layout = Layout({str(ct.lxcpath)!r}, default_rundir())\n"
            f"running = [(n, read_runstate(layout, n)) for n in ({C!r}, 'c2')]\n"
            "batched = cgroup_pids_of(layout, running)\n"
            "count = len(sent)\n"
            "single = {n: cgroup_pids_of(layout, [(n, rs)])[n] for n, rs in running}\n"
            # c2 has just started: its init may still be spawning its inittab's processes
            # between the two answers; they must agree once its process set holds still
            "import time\n"
            "for _ in range(50):\n"
            "    if batched == single: break\n"
            "    time.sleep(0.05)\n"
            "    batched = cgroup_pids_of(layout, running)\n"
            "    single = {n: cgroup_pids_of(layout, [(n, rs)])[n] for n, rs in running}\n"
            "print(repr((count, batched, single)), file=sys.stderr)\n"
        ))
        assert requests == 1
        assert batched == single and all(batched[name] for name in (C, "c2"))
        assert set(batched[C]).isdisjoint(batched["c2"])
        raw = _python(ct, (
            "from lxctools.monitor.client import try_connect\n"
            "from lxctools.paths import Layout, default_rundir\n"
            f"conn = try_connect(Layout({str(ct.lxcpath)!r}, default_rundir()))\n"
            "print(repr(sorted(conn.request({'op': 'pids', 'names': ['c2', 'nope']})['pids_of'])), file=sys.stderr)\n"
        ))
        assert raw == ["c2"]
        table = ct.ok("ps", "--lxc").stdout.splitlines()[1:]
        assert {line.split()[0] for line in table} == {C, "c2"}
    finally:
        ct("stop", "-n", "c2", "-k")


def _python(pyl, body: str):
    """Run BODY in a fresh interpreter with this tree's lxctools and the fixture's environment;
    what it prints (a Python literal) to stderr last."""
    from tests.conftest import ROOT
    code = f"import sys\nsys.path.insert(0, {str(ROOT)!r})\n" + body
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=pyl.env, timeout=30)
    return ast.literal_eval(proc.stderr.strip().splitlines()[-1])


def _in_process(pyl, tool: str, argv: list[str], without_supervisor: bool = False) -> tuple[int, str, set[str]]:
    """pyl-TOOL run in a fresh interpreter: its exit code, its output, and the modules it
    loaded. without_supervisor: as if none answered (an orphan container, or the fallback for
    an older supervisor), so the client does the work itself."""
    rc, out, modules = _python(pyl, (
        "import io, contextlib\n"
        f"sys.argv = {[f'pyl-{tool}', '-P', str(pyl.lxcpath), *argv]!r}\n"
        + ("import lxctools.monitor.client as c; c.try_connect = lambda layout: None\n" if without_supervisor else "")
        + "from lxctools.cli.driver import run_tool\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        f"    rc = run_tool({tool!r})\n"
        "print(repr((rc, out.getvalue(), sorted(sys.modules))), file=sys.stderr)\n"
    ))
    return rc, out, set(modules)


def _cgroup_in_process(pyl, argv: list[str], without_supervisor: bool = False) -> tuple[int, str, bool]:
    """pyl-cgroup in a fresh interpreter: exit code, output, whether it loaded the cgroup code."""
    rc, out, modules = _in_process(pyl, "cgroup", argv, without_supervisor)
    return rc, out, "lxctools.runtime.cgroups" in modules


def _raw_cgroup_request(pyl, fields: dict) -> tuple[int, str]:
    """A cgroup request sent straight to the supervisor: its exit code and value (or error)."""
    return _python(pyl, (
        "from lxctools.errors import PylError\n"
        "from lxctools.monitor.client import try_connect\n"
        "from lxctools.paths import Layout, default_rundir\n"
        f"conn = try_connect(Layout({str(pyl.lxcpath)!r}, default_rundir()))\n"
        "try:\n"
        f"    result = (0, str(conn.request({{'op': 'cgroup', 'name': {C!r}, **{fields!r}}}).get('value')).rstrip())\n"
        "except PylError as err:\n"
        "    result = (int(err.exit_code), err.message)\n"
        "print(repr(result), file=sys.stderr)\n"
    ))


@pytest.mark.skipif(_v1("memory") is None and not os.path.exists("/sys/fs/cgroup/cgroup.controllers"),
                    reason="needs a v1 memory hierarchy or a pure v2 host")
def test_cgroup_goes_through_the_supervisor_and_falls_back_without_one(ct):
    """The supervisor reads and writes the cgroup (the client does not import the cgroup code:
    ~25 ms of a ~40 ms pyl-cgroup); with no supervisor answering, the client does the same."""
    key = "memory.limit_in_bytes" if _v1("memory") else "memory.max"
    assert ct.supervisor_pids()
    assert _cgroup_in_process(ct, ["-n", C, key, "134217728"]) == (0, "", False)
    assert _cgroup_in_process(ct, ["-n", C, key]) == (0, "134217728\n", False)
    assert _cgroup_in_process(ct, ["-n", C, key], without_supervisor=True) == (0, "134217728\n", True)
    assert _cgroup_in_process(ct, ["-n", C, key, "201326592"], without_supervisor=True) == (0, "", True)
    assert ct.ok("cgroup", "-n", C, key).stdout == "201326592\n"
    # The supervisor refuses what the client refuses, with the same exit codes.
    # (A PID no process has: were the refusal gone, the write would fail, not move host PID 1 in.)
    for argv, rc in ((["cgroup.procs", "999999999"], 64), (["nosuchctl.file"], 66), ([key, "bogus"], 1)):
        assert _cgroup_in_process(ct, ["-n", C, *argv])[0] == rc
        assert _cgroup_in_process(ct, ["-n", C, *argv], without_supervisor=True)[0] == rc
    # The supervisor checks for itself (a client of another version may not): raw requests.
    assert _raw_cgroup_request(ct, {"key": "cgroup.procs", "value": "999999999"}) == (
        64, "cannot write cgroup.procs: pyl-cgroup does not move processes into a container")
    assert _raw_cgroup_request(ct, {"key": 7})[0] == 64
    assert _raw_cgroup_request(ct, {"key": key, "value": 5})[0] == 64
    assert _raw_cgroup_request(ct, {"key": key}) == (0, "201326592")


# ------------------------------------------------------------------ pyl-top


def test_top_batch_and_json_without_a_terminal(ct):
    out = ct.ok("top", "--batch", "-n", "2", "-d", "0.2").stdout.splitlines()
    assert out[0].startswith("time_ms,container,cpu_nanos,")
    rows = [line.split(",") for line in out[1:]]
    assert len(rows) == 2 and all(r[1] == C for r in rows)
    assert int(rows[0][2]) > 0 and int(rows[0][7]) > 0  # CPU used, memory used
    objects = [json.loads(line) for line in ct.ok("top", "--json", "-n", "2", "-d", "0.2").stdout.splitlines()]
    assert len(objects) == 2
    second = objects[1]["containers"][0]
    assert second["name"] == C and second["pids"] >= 1 and second["cpu_percent"] is not None
    plain = ct.ok("top", "-n", "1").stdout
    assert C in plain and "TOTAL 1 of 1" in plain and "\x1b[" not in plain


# ------------------------------------------------------------------ pyl-device


@pytest.mark.skipif(not os.path.exists("/dev/net/tun")
                    or (_v1("devices") is None and not os.path.exists("/sys/fs/cgroup/cgroup.controllers")),
                    reason="needs /dev/net/tun and a device cgroup (v1 devices, or pure v2's BPF program)")
def test_device_node_add_and_del(ct):
    denied = ct("attach", "-n", C, "--", "sh", "-c", "test -e /dev/net/tun")
    assert denied.returncode != 0
    ct.ok("device", "-n", C, "add", "/dev/net/tun")
    listing = ct.ok("attach", "-n", C, "--", "ls", "-l", "/dev/net/tun").stdout
    assert listing.startswith("c") and "10," in listing and "200" in listing
    # Opening works (the devices cgroup allows it): tun says EBADFD on read, not EPERM.
    opened = ct("attach", "-n", C, "--", "sh", "-c", "cat /dev/net/tun")
    assert "Operation not permitted" not in opened.stderr and "bad state" in opened.stderr.lower()
    ct.ok("device", "-n", C, "add", "/dev/net/tun")  # idempotent
    ct.ok("device", "-n", C, "del", "/dev/net/tun")
    assert ct("attach", "-n", C, "--", "sh", "-c", "test -e /dev/net/tun").returncode != 0
    again = ct("device", "-n", C, "del", "/dev/net/tun")
    assert again.returncode == 66


def test_device_interface_in_and_out(ct):
    subprocess.run(["ip", "link", "add", "pyltv0", "type", "veth", "peer", "name", "pyltv1"], check=True)
    try:
        ct.ok("device", "-n", C, "add", "pyltv0", "net1")
        assert not os.path.exists("/sys/class/net/pyltv0")
        inside = ct.ok("attach", "-n", C, "--", "cat", "/proc/net/dev").stdout
        assert "net1:" in inside
        taken = ct("device", "-n", C, "add", "pyltv1", "net1")
        assert taken.returncode == 68 and os.path.exists("/sys/class/net/pyltv1")
        ct.ok("device", "-n", C, "del", "pyltv0", "net1")
        assert os.path.exists("/sys/class/net/pyltv0")
        assert "net1:" not in ct.ok("attach", "-n", C, "--", "cat", "/proc/net/dev").stdout
    finally:
        subprocess.run(["ip", "link", "del", "pyltv0"], capture_output=True)
