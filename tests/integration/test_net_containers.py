"""Real containers on pyl's default bridge (pylbr0, 10.0.7.0/24 unless /etc/default/pyl-net says
otherwise): addresses at RUNNING, container <-> container and host, cleanup after stop and after
the supervisor is killed. Traffic stays on pylbr0 between this host and its containers."""

from __future__ import annotations

import json
import os
import subprocess
import time

from tests.conftest import requires_busybox, requires_root

pytestmark = [requires_root, requires_busybox]


def addr(pyl, name: str) -> str:
    info = json.loads(pyl.ok("info", "-n", name, "--json").stdout)
    assert info["ips"], info
    return info["ips"][0]


def host_links() -> set[str]:
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    return {line.split(": ")[1].split("@")[0] for line in out.splitlines()}


def wait_gone(links: set[str], within: float = 2.0) -> set[str]:
    """The links of LINKS still there after WITHIN seconds. A stop returns without waiting for
    the kernel to free the container's network namespace, which takes the veth host end with
    it; the supervisor confirms that within a second (NET_RELEASE_WAIT) or deletes the link."""
    deadline = time.monotonic() + within
    left = set(links)
    while left and time.monotonic() < deadline:
        time.sleep(0.02)
        left = {n for n in left if os.path.exists(f"/sys/class/net/{n}")}
    return left


def test_two_containers_reach_each_other_and_the_host(pyl):
    for name in ("n1", "n2"):
        pyl.ok("create", "-n", name, "-t", "busybox")
        pyl.ok("start", "-n", name)
    a, b = addr(pyl, "n1"), addr(pyl, "n2")
    assert a != b
    # usable the moment start returned: no DHCP wait
    r = pyl("attach", "-n", "n1", "--", "ping", "-c", "1", "-W", "3", b)
    assert r.returncode == 0, r.stdout + r.stderr
    gateway = pyl.ok("attach", "-n", "n1", "--", "ip", "route").stdout
    assert "default via" in gateway
    host = gateway.split("default via ")[1].split()[0]
    assert pyl("attach", "-n", "n2", "--", "ping", "-c", "1", "-W", "3", host).returncode == 0
    # a TCP echo through busybox nc, container to container. The listener's stdin is a pipe held
    # open: at EOF (/dev/null) busybox nc half-closes the connection the moment it accepts, and a
    # client whose `echo` has not yet reached its pipe reads that EOF and exits 0 having sent nothing.
    server = pyl.popen("attach", "-n", "n2", "--", "nc", "-l", "-p", "7777", stdin=subprocess.PIPE,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    # retry until the listener is up (bounded: 20 tries)
    pyl.ok("attach", "-n", "n1", "--", "sh", "-c",
           f"for i in $(seq 20); do echo hello-over-tcp | nc -w 2 {b} 7777 && exit 0; sleep 0.25; done; exit 1")
    out, err = server.communicate(timeout=10)
    assert b"hello-over-tcp" in out, (server.returncode, err)
    rows = {r["name"]: r for r in json.loads(pyl.ok("ls", "--json").stdout)}
    assert rows["n1"]["ipv4"] == [a] and "eth0" in rows["n1"]["interface"]
    # without the INTERFACE column the addresses come from one dump (netinfo.addresses)
    table = dict(line.split() for line in pyl.ok("ls", "-F", "name,ipv4").stdout.splitlines()[1:])
    assert table == {"n1": a, "n2": b}
    info = pyl.ok("info", "-n", "n1").stdout
    assert "Link:" in info and "TX bytes:" in info
    veths = {json.loads(pyl.ok("info", "-n", n, "--json").stdout)["links"][0]["link"] for n in ("n1", "n2")}
    assert len(veths) == 2 and veths <= host_links()
    for name in ("n1", "n2"):
        pyl.ok("stop", "-n", name, "-k")
    assert wait_gone(veths) == set()  # both host veth ends removed


def test_same_address_after_restart_and_supervisor_kill(pyl):
    pyl.ok("create", "-n", "n1", "-t", "busybox")
    pyl.ok("start", "-n", "n1")
    first = addr(pyl, "n1")
    links_running = host_links()
    subprocess.run(["pkill", "-9", "-f", f"lxctools.monitor.daemon {pyl.lxcpath}"], check=False)
    time.sleep(0.3)
    # orphaned, it still shows its address: pyl-ls and pyl-info read its namespace themselves,
    # and none of them starts a supervisor to ask
    rows = {r["name"]: r for r in json.loads(pyl.ok("ls", "--fancy", "--json").stdout)}
    assert rows["n1"]["state"] == "RUNNING" and rows["n1"]["ipv4"] == [first], rows
    assert "eth0" in rows["n1"]["interface"]
    assert pyl.ok("ls", "-F", "name,ipv4").stdout.split()[-2:] == ["n1", first]
    assert addr(pyl, "n1") == first
    info = json.loads(pyl.ok("info", "-n", "n1", "--json").stdout)
    assert [link["link"] for link in info["links"]] == [n for n in links_running if n.startswith("pyln1")]
    assert pyl.supervisor_pids() == []
    pyl.ok("stop", "-n", "n1", "-k")       # a new supervisor adopts it and tears it down
    veths = {n for n in links_running if n.startswith("pyln1")}
    assert veths and wait_gone(veths) == set()  # the veth went away
    pyl.ok("start", "-n", "n1")
    assert addr(pyl, "n1") == first        # the lease is stable and was not duplicated
    pyl.ok("stop", "-n", "n1", "-k")


def _hold_netns(pid: int) -> subprocess.Popen:
    """A host process inside the network namespace of PID: the namespace outlives PID's exit."""
    target = os.readlink(f"/proc/{pid}/ns/net")
    holder = subprocess.Popen(["nsenter", f"--net=/proc/{pid}/ns/net", "sleep", "60"])
    for _ in range(200):
        try:
            if os.readlink(f"/proc/{holder.pid}/ns/net") == target:
                return holder
        except OSError:
            pass
        time.sleep(0.01)
    holder.kill()
    raise AssertionError("nsenter did not enter the container's network namespace")


def test_a_held_network_namespace_does_not_keep_the_veth(pyl):
    # A stop does not wait for the kernel to free the container's network namespace (which
    # takes the veth with it). If something else holds that namespace, the supervisor deletes
    # the link itself after NET_RELEASE_WAIT, and frees the address only then; a start of the
    # same container in between waits for that rather than put the address on a second link.
    pyl.ok("create", "-n", "h1", "-t", "busybox")
    for restart_at_once in (False, True):
        pyl.ok("start", "-n", "h1")
        info = json.loads(pyl.ok("info", "-n", "h1", "--json").stdout)
        veth, address = info["links"][0]["link"], info["ips"][0]
        holder = _hold_netns(info["pid"])
        try:
            pyl.ok("stop", "-n", "h1", "-k")
            assert os.path.exists(f"/sys/class/net/{veth}")  # held: still there
            if restart_at_once:
                pyl.ok("start", "-n", "h1")
                assert not os.path.exists(f"/sys/class/net/{veth}")
                assert addr(pyl, "h1") == address
                pyl.ok("stop", "-n", "h1", "-k")
            else:
                assert wait_gone({veth}, within=3.0) == set()
                assert holder.poll() is None  # deleted by pyl, not gone with the namespace
        finally:
            holder.kill()
            holder.wait()


def test_interface_sysctls_and_hooks_see_the_configured_network(pyl, tmp_path):
    # PID 1 mounts its rootfs while the netlink worker configures its interfaces. Sysctls of an
    # interface (they need eth0) and the mount hooks come after that, as in LXC; with a
    # pre-mount hook, the mounting itself waits for the network.
    import shutil
    log = tmp_path / "hooks.log"
    hook = tmp_path / "hook.sh"
    hook.write_text(f"#!/bin/sh\n{{ echo \"$3\"; {shutil.which('ip')} -4 -o addr show dev eth0; }} >> {log}\n")
    hook.chmod(0o755)
    pyl.ok("create", "-n", "k1", "-t", "busybox")
    for hooks in (("mount", "autodev"), ("pre-mount", "mount")):
        log.write_text("")
        pyl.ok("start", "-n", "k1", "-s", "lxc.sysctl.net.ipv4.conf.eth0.rp_filter=2",
               *[a for h in hooks for a in ("-s", f"lxc.hook.{h}={hook}")])
        address = addr(pyl, "k1")
        assert pyl.ok("attach", "-n", "k1", "--", "cat", "/proc/sys/net/ipv4/conf/eth0/rp_filter").stdout == "2\n"
        text = log.read_text()
        assert [line for line in text.splitlines() if "inet" not in line] == list(hooks), text
        assert text.count(f"inet {address}/") == len(hooks), text
        pyl.ok("stop", "-n", "k1", "-k")


def test_static_address_and_bad_network_config(pyl, tmp_path):
    pyl.ok("create", "-n", "s1", "-t", "busybox")
    # -s on a multi-valued key appends, as in LXC: clear it first, then set the static address
    pyl.ok("start", "-n", "s1", "-s", "lxc.net.0.ipv4.address=", "-s", "lxc.net.0.ipv4.address=10.0.7.33/24")
    assert addr(pyl, "s1") == "10.0.7.33"
    pyl.ok("stop", "-n", "s1", "-k")
    r = pyl("start", "-n", "s1", "-s", "lxc.net.0.link=nosuchbridge9")
    assert r.returncode != 0 and "nosuchbridge9" in r.stderr
    r = pyl("start", "-n", "s1", "-s", "lxc.net.0.veth.pair=averyveryverylongname")
    assert r.returncode == 78 and "15" in r.stderr
    assert pyl.ok("info", "-n", "s1", "-s", "-H").stdout == "STOPPED\n"


def _supervisor_children(pyl) -> tuple[int, list[str]]:
    """(supervisor pid, command lines of its children that are pyl processes: the netlink worker)."""
    sock = str(pyl.rundir)
    supervisors = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    cmd = f.read().split(b"\0")
            except OSError:
                continue
            if b"lxctools.monitor.daemon" in cmd and sock.encode() in cmd:
                supervisors.append(int(entry))
    parent = {}
    for pid in supervisors:
        with open(f"/proc/{pid}/stat") as f:
            parent[pid] = int(f.read().rsplit(")", 1)[1].split()[1])  # field 4: ppid
    roots = [pid for pid in supervisors if parent[pid] not in parent]
    assert len(roots) == 1, parent
    return roots[0], [str(pid) for pid in supervisors if parent[pid] == roots[0]]


def _end_supervisor(pid: int) -> None:
    """SIGTERM and wait (the fixture checks nothing is left; don't wait for the linger)."""
    os.kill(pid, 15)
    for _ in range(200):
        if not os.path.exists(f"/proc/{pid}"):
            break
        time.sleep(0.02)


@requires_root
@requires_busybox
def test_a_first_start_forks_the_worker_early_into_the_supervisors_place(pyl):
    # A supervisor spawned for a start forks its netlink worker before importing itself
    # (daemon.main), so before it names itself and (pure v2) moves into pyl.monitor: the worker
    # must still end up named like it and in its cgroups, not in the caller's.
    pyl.env.update(PYL_NETWORKER_LINGER="30", PYL_MONITOR_LINGER="30")
    pyl.ok("create", "-n", "c1", "-t", "busybox")
    assert not pyl.supervisor_pids()
    pyl.ok("start", "-n", "c1")
    supervisor, workers = _supervisor_children(pyl)
    assert len(workers) == 1
    def comm(pid):
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    def cgroups(pid):
        with open(f"/proc/{pid}/cgroup") as f:
            return f.read()
    assert comm(supervisor) == comm(workers[0]) == "pyl-monitord"
    assert cgroups(workers[0]) == cgroups(supervisor)  # pure v2: both in pyl.monitor
    pyl.ok("stop", "-n", "c1", "-k")
    _end_supervisor(supervisor)


@requires_root
@requires_busybox
def test_pyroute2_leaves_with_the_netlink_worker_and_stop_needs_none(pyl):
    # The worker holding pyroute2 goes after PYL_NETWORKER_LINGER idle seconds; the supervisor
    # alone keeps the container running, and a later stop removes its veth without a worker.
    pyl.env["PYL_NETWORKER_LINGER"] = "0.2"
    pyl.env["PYL_MONITOR_LINGER"] = "30"
    pyl.ok("create", "-n", "c1", "-t", "busybox")
    pyl.ok("start", "-n", "c1")
    info = json.loads(pyl.ok("info", "-n", "c1", "--json").stdout)
    assert info["ips"] and info["links"]
    veth = info["links"][0]["link"]
    supervisor, workers = _supervisor_children(pyl)
    deadline = time.monotonic() + 5
    while workers and time.monotonic() < deadline:
        time.sleep(0.05)
        supervisor, workers = _supervisor_children(pyl)
    assert workers == []
    assert os.path.exists(f"/sys/class/net/{veth}")
    pyl.ok("stop", "-n", "c1", "-k")
    assert wait_gone({veth}) == set()
    # neither the stop nor the release after it (the kernel drops the veth) spawned a worker
    assert _supervisor_children(pyl) == (supervisor, [])
    _end_supervisor(supervisor)


def test_a_static_address_is_one_containers_while_it_runs(pyl):
    # The bridge's own address, or one a running container holds, would break both: refused.
    for name in ("n1", "n2"):
        pyl.ok("create", "-n", name, "-t", "busybox")
    gw = pyl("start", "-n", "n1", "-s", "lxc.net.0.ipv4.address=", "-s", "lxc.net.0.ipv4.address=10.0.7.1/24")
    assert gw.returncode == 78 and "bridge's own address" in gw.stderr, gw.stderr
    static = ["-s", "lxc.net.0.ipv4.address=", "-s", "lxc.net.0.ipv4.address=10.0.7.240/24"]
    pyl.ok("start", "-n", "n1", *static)
    clash = pyl("start", "-n", "n2", *static)
    assert clash.returncode == 71 and "in use by container n1" in clash.stderr, clash.stderr
    assert pyl.ok("info", "-n", "n2", "-s", "-H").stdout == "STOPPED\n"
    pyl.ok("stop", "-n", "n1", "-k")
    deadline = time.monotonic() + 3  # the address is free once the stop's release is done
    while pyl("start", "-n", "n2", *static).returncode != 0:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert addr(pyl, "n2") == "10.0.7.240"
    pyl.ok("stop", "-n", "n2", "-k")
