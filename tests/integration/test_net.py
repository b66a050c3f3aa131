"""Container networking against the real kernel, in throwaway network namespaces.

Each "container" is a forked child that unshared CLONE_NEWNET and waits; links use unique pyl-test
names (pyltb*/pylt*), addresses come from 10.250.x.0/24, and traffic stays between our own
namespaces and bridges. Every test removes what it made; the ``no_link_leaks`` fixture checks.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from lxctools.kernel import ns
from lxctools.runtime import ipam, net
from lxctools.runtime.netplan import plan_networks

BUSYBOX = "/bin/busybox"
ROOT = os.geteuid() == 0
pytestmark = pytest.mark.skipif(not ROOT, reason="network namespaces need root")


class Netns:
    """A process sitting in a fresh network namespace, standing in for a container's init."""

    def __init__(self) -> None:
        ready_r, ready_w = os.pipe()
        self._hold_r, self._hold_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - child
            try:
                os.close(ready_r)
                os.close(self._hold_w)
                ns.unshare(ns.CLONE_NEWNET)
                os.write(ready_w, b"1")
                os.read(self._hold_r, 1)  # returns when the parent closes its end (or dies)
            finally:
                os._exit(0)
        os.close(ready_w)
        os.close(self._hold_r)
        ok = os.read(ready_r, 1)
        os.close(ready_r)
        self.pid = pid
        if ok != b"1":
            self.close()
            raise RuntimeError("netns child failed to unshare")

    def close(self) -> None:
        if self.pid:
            os.close(self._hold_w)
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            os.waitpid(self.pid, 0)
            self.pid = 0

    def run(self, *argv: str, timeout: float = 10) -> subprocess.CompletedProcess[str]:
        """Exec argv in a child that joined this netns (setns in the child, never in pytest)."""
        fd = ns.open_ns(self.pid, "net")
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, pass_fds=(fd,),
                                  preexec_fn=lambda: ns.setns(fd, ns.CLONE_NEWNET))
        finally:
            os.close(fd)


@contextmanager
def _iproute():
    """pyroute2's own IPRoute, for the tests' scaffolding and as a second opinion on what pyl's
    messages did: pyl itself encodes with pyroute2's message classes, not through IPRoute."""
    from pyroute2.iproute.linux import IPRoute  # not the package: pyl may have loaded it without __init__
    with IPRoute() as ipr:
        yield ipr


def uid() -> str:
    return secrets.token_hex(3)


def pyl_links() -> set[str]:
    return {n for n in net.link_names() if n.startswith("pylt")}


@pytest.fixture
def no_link_leaks() -> Iterator[None]:
    before = pyl_links()
    yield
    # The kernel frees a dead netns's links asynchronously; give it a moment before judging.
    for _ in range(50):
        leaked = pyl_links() - before
        if not leaked:
            break
        time.sleep(0.05)
    assert not leaked, f"links left behind: {sorted(leaked)}"


@pytest.fixture
def netns() -> Iterator[Callable[[], Netns]]:
    made: list[Netns] = []

    def make() -> Netns:
        made.append(Netns())
        return made[-1]
    try:
        yield make
    finally:
        for n in made:
            n.close()


class Bridge:
    """A test bridge pyltb<random> on 10.250.N.1/24 in the host netns."""

    def __init__(self, third_octet: int) -> None:
        from lxctools.runtime.bridge import BridgeConfig, _bridge_up
        self.name = f"pyltb{uid()}"
        self.cidr = f"10.250.{third_octet}.1/24"
        _bridge_up(BridgeConfig(name=self.name, address=self.cidr))

    def close(self) -> None:
        from lxctools.runtime.bridge import _delete_link
        _delete_link(self.name)


@pytest.fixture
def bridge() -> Iterator[Callable[[int], Bridge]]:
    made: list[Bridge] = []

    def make(octet: int) -> Bridge:
        made.append(Bridge(octet))
        return made[-1]
    try:
        yield make
    finally:
        for b in made:
            b.close()


def start(plans, container: Netns, **kw) -> net.HostNetState:
    """What the start choreography does: host side in the caller, inside part in a child in the netns."""
    state = net.setup_host(plans, container.pid, **kw)
    try:
        net.in_netns(container.pid, lambda: net.configure_inside(plans, state))
    except BaseException:
        net.teardown(state)
        raise
    return state


def veth_values(link: str | None = None, **extra: str | list[str]) -> dict[str, str | list[str]]:
    values: dict[str, str | list[str]] = {"lxc.net.0.type": "veth", "lxc.net.0.flags": "up",
                                          "lxc.net.0.veth.pair": f"pylt{uid()}"}
    if link:
        values["lxc.net.0.link"] = link
    values.update({f"lxc.net.0.{k.replace('_', '.')}": v for k, v in extra.items()})
    return values


def test_veth_static_address_and_teardown(no_link_leaks, netns) -> None:
    c = netns()
    values = veth_values(**{"ipv4.address": ["10.250.1.2/24"], "ipv6.address": ["fd00:250:1::2/64"],
                            "hwaddr": "02:00:0a:fa:01:02", "mtu": "1400", "ipv4.gateway": "dev"})
    values["lxc.net.0.veth.ipv4.route"] = ["10.250.1.2/32"]
    plans = plan_networks(values, container_name="c1")
    state = start(plans, c)
    try:
        eth0 = {i.name: i for i in net.interfaces_of(c.pid)}["eth0"]
        assert eth0.mac == "02:00:0a:fa:01:02" and eth0.mtu == 1400 and eth0.state == "up"
        assert eth0.ipv4 == ["10.250.1.2/24"] and eth0.ipv6 == ["fd00:250:1::2/64"]
        host = net.host_link_stats(plans[0].veth_pair)
        assert host is not None and host.mtu == 1400 and host.state == "up"
        # The host route from veth.ipv4.route lets the host reach the container directly; the
        # container answers through its device default route (ipv4.gateway = dev).
        assert "default dev eth0" in c.run(BUSYBOX, "ip", "route").stdout
        ping = subprocess.run([BUSYBOX, "ping", "-c1", "-W2", "10.250.1.2"], capture_output=True, text=True)
        assert ping.returncode == 0, ping.stdout + ping.stderr
        # lo is up inside, as in LXC.
        assert c.run(BUSYBOX, "ping", "-c1", "-W1", "127.0.0.1").returncode == 0
        # JSON round trip: the supervisor stores the state and tears down from the stored copy.
        state = net.HostNetState.from_json(state.to_json())
    finally:
        net.teardown(state)
    assert net.host_link_stats(plans[0].veth_pair) is None
    net.teardown(state)  # idempotent


def test_ping_between_two_namespaces_over_bridge(no_link_leaks, netns, bridge) -> None:
    br = bridge(2)
    a, b = netns(), netns()
    pa = plan_networks(veth_values(br.name, **{"ipv4.address": ["10.250.2.10/24"], "ipv4.gateway": "auto"}),
                       container_name="a")
    pb = plan_networks(veth_values(br.name, **{"ipv4.address": ["10.250.2.11/24"]}), container_name="b")
    sa = start(pa, a)
    try:
        sb = start(pb, b)
        try:
            assert net.host_link_stats(pa[0].veth_pair) is not None
            assert sorted(os.listdir(f"/sys/class/net/{br.name}/brif")) == sorted(
                [pa[0].veth_pair, pb[0].veth_pair])
            r = a.run(BUSYBOX, "ping", "-c2", "-W2", "10.250.2.11")
            assert r.returncode == 0, r.stdout + r.stderr
            assert "default via 10.250.2.1" in a.run(BUSYBOX, "ip", "route").stdout
            # gateway auto is the bridge's address: reachable too.
            assert a.run(BUSYBOX, "ping", "-c1", "-W2", "10.250.2.1").returncode == 0
            stats = {i.name: i for i in net.interfaces_of(b.pid)}["eth0"]
            assert stats.rx_bytes > 0 and stats.tx_bytes > 0
        finally:
            net.teardown(sb)
    finally:
        net.teardown(sa)


def test_missing_bridge_is_a_config_error_and_leaves_nothing(no_link_leaks, netns) -> None:
    from lxctools.errors import ConfigError
    c = netns()
    plans = plan_networks(veth_values("pyltbnope9"), container_name="c")
    with pytest.raises(ConfigError, match=r"lxc.net.0.link: bridge 'pyltbnope9' does not exist"):
        net.setup_host(plans, c.pid)


def test_a_link_that_is_no_bridge_is_a_config_error(no_link_leaks, netns) -> None:
    from lxctools.errors import ConfigError
    device = f"pyltd{uid()}"
    _dummy(device)  # a veth end: sysfs shows no bridge folder, netlink names its kind
    try:
        plans = plan_networks(veth_values(device), container_name="c")
        with pytest.raises(ConfigError, match=rf"lxc.net.0.link: '{device}' is not a bridge \(it is veth\)"):
            net.setup_host(plans, netns().pid)
    finally:
        from lxctools.runtime.bridge import _delete_link
        _delete_link(device)


def test_bridge_index_and_mtu_from_sysfs_are_netlinks(no_link_leaks, bridge) -> None:
    br = bridge(9)
    with _iproute() as ipr:
        link = ipr.link("get", ifname=br.name)[0]
    assert net._lookup(br.name) == link["index"]
    assert net._bridge_mtu(br.name, link["index"]) == link.get("IFLA_MTU")
    assert net._bridge_mtu(br.name, link["index"] + 1000) is None  # another namespace's sysfs
    assert net._lookup(f"{br.name}-none") is None


def test_existing_pair_name_is_a_config_error(no_link_leaks, netns) -> None:
    from lxctools.errors import ConfigError
    a, b = netns(), netns()
    values = veth_values()
    plans = plan_networks(values, container_name="a")
    state = net.setup_host(plans, a.pid)
    try:
        with pytest.raises(ConfigError, match="veth.pair: a link named"):
            net.setup_host(plans, b.pid)
        assert net.host_link_stats(plans[0].veth_pair) is not None  # the first one is untouched
    finally:
        net.teardown(state)


def _dummy(name: str, mac: str | None = None) -> None:
    """A stand-in for a physical NIC: this kernel has no dummy driver, so one end of a veth pair."""
    with _iproute() as ipr:
        ipr.link("add", ifname=name, kind="veth", peer=f"{name}p", **({"address": mac} if mac else {}))


def _kind_supported(kind: str, **extra: object) -> bool:
    name = f"pyltk{uid()}"
    with _iproute() as ipr:
        try:
            ipr.link("add", ifname=name, kind="veth", peer=f"{name}p")
            try:
                ipr.link("add", ifname=f"{name}x", kind=kind, link=net._lookup(name), **extra)
            except Exception:
                return False
            return True
        finally:
            ipr.link("del", index=net._lookup(name))


def test_macvlan_between_two_namespaces(no_link_leaks, netns) -> None:
    parent = f"pyltd{uid()}"
    _dummy(parent)
    try:
        with _iproute() as ipr:
            # macvlan ports follow the parent's carrier: a veth parent needs its peer up too.
            for end in (parent, f"{parent}p"):
                ipr.link("set", index=net._lookup(end), state="up")
        a, b = netns(), netns()
        mk = lambda addr: {"lxc.net.0.type": "macvlan", "lxc.net.0.link": parent, "lxc.net.0.flags": "up",  # noqa: E731
                           "lxc.net.0.macvlan.mode": "bridge", "lxc.net.0.ipv4.address": addr}
        sa = start(plan_networks(mk("10.250.3.10/24"), container_name="a"), a)
        sb = start(plan_networks(mk("10.250.3.11/24"), container_name="b"), b)
        try:
            r = a.run(BUSYBOX, "ping", "-c2", "-W2", "10.250.3.11")
            assert r.returncode == 0, r.stdout + r.stderr
        finally:
            net.teardown(sa)
            net.teardown(sb)
    finally:
        from lxctools.runtime.bridge import _delete_link
        _delete_link(parent)


def test_vlan_on_dummy_parent(no_link_leaks, netns) -> None:
    """With 802.1q in the kernel the vlan appears inside; without it (this CI VM's kernel has
    no vlan driver) setup fails with one clear error and leaves nothing behind."""
    supported = _kind_supported("vlan", vlan_id=7)
    parent = f"pyltd{uid()}"
    _dummy(parent)
    with _iproute() as ipr:  # a vlan comes up only on a parent that is up
        ipr.link("set", index=net._lookup(parent), state="up")
    try:
        c = netns()
        plans = plan_networks({"lxc.net.0.type": "vlan", "lxc.net.0.link": parent, "lxc.net.0.vlan.id": "42",
                               "lxc.net.0.name": "vl42", "lxc.net.0.flags": "up"}, container_name="c")
        if not supported:
            from lxctools.errors import PylError
            with pytest.raises(PylError) as err:
                start(plans, c)
            assert "Traceback" not in err.value.message and err.value.message
            assert "vl42" not in net.link_names(c.pid)
            return
        state = start(plans, c)
        try:
            assert "vl42" in net.link_names(c.pid)
        finally:
            net.teardown(state)
    finally:
        from lxctools.runtime.bridge import _delete_link
        _delete_link(parent)


def test_phys_moved_in_and_returned(no_link_leaks, netns) -> None:
    name, mac = f"pyltp{uid()}", "02:00:0a:fa:04:01"
    _dummy(name, mac)
    try:
        c = netns()
        plans = plan_networks({"lxc.net.0.type": "phys", "lxc.net.0.link": name, "lxc.net.0.name": "eth7",
                               "lxc.net.0.mtu": "1300", "lxc.net.0.flags": "up",
                               "lxc.net.0.ipv4.address": "10.250.4.2/24"}, container_name="c")
        state = start(plans, c)
        try:
            assert net.host_link_stats(name) is None
            inside = {i.name: i for i in net.interfaces_of(c.pid)}
            assert inside["eth7"].mac == mac and inside["eth7"].mtu == 1300
        finally:
            net.return_phys(plans, c.pid)
            net.teardown(state)
        back = net.host_link_stats(name)
        assert back is not None and back.mac == mac and back.mtu == 1500
        assert "eth7" not in net.link_names(c.pid)
    finally:
        from lxctools.runtime.bridge import _delete_link
        _delete_link(name)


def test_teardown_survives_a_dead_netns(no_link_leaks, netns) -> None:
    """A dummy 'phys' dies with its netns; teardown must not raise (veth end may linger a moment)."""
    name = f"pyltp{uid()}"
    _dummy(name)
    c = netns()
    values = veth_values()
    values.update({"lxc.net.1.type": "phys", "lxc.net.1.link": name})
    plans = plan_networks(values, container_name="c")
    state = start(plans, c)
    c.close()
    net.return_phys(plans, state.pid)  # netns gone: quietly nothing to do
    net.teardown(state)
    net.teardown(state)


def test_ipam_auto_address_and_gateway(no_link_leaks, netns, bridge, tmp_path) -> None:
    br = bridge(5)
    c = netns()
    plans = plan_networks(veth_values(br.name, **{"ipv4.address": "auto", "ipv4.gateway": "auto"}),
                          container_name="web")
    state = start(plans, c, lxcpath=tmp_path)
    try:
        got = state.auto_ipv4["0"]
        assert got.startswith("10.250.5.") and got.endswith("/24")
        assert int(got.split(".")[3].split("/")[0]) >= 128  # upper half: ipam's pool
        assert {i.name: i for i in net.interfaces_of(c.pid)}["eth0"].ipv4 == [got]
        assert c.run(BUSYBOX, "ping", "-c1", "-W2", "10.250.5.1").returncode == 0
    finally:
        net.teardown(state)
    assert ipam.leases(tmp_path, br.cidr)["web"] == {"address": got.split("/")[0], "active": False}


def _allocate_in_child(lxcpath: Path, name: str, write_fd: int, go_fd: int) -> None:  # pragma: no cover
    try:
        os.read(go_fd, 1)
        addr = ipam.allocate(lxcpath, "10.250.6.1/24", name)
        os.write(write_fd, f"{name}={addr}\n".encode())
    finally:
        os._exit(0)


def test_ipam_concurrent_allocations_differ(tmp_path) -> None:
    r, w = os.pipe()
    go_r, go_w = os.pipe()
    pids = []
    names = [f"c{i}" for i in range(8)]
    for name in names:
        pid = os.fork()
        if pid == 0:
            os.close(r)
            _allocate_in_child(tmp_path, name, w, go_r)
        pids.append(pid)
    os.close(w)
    os.write(go_w, b"x" * len(names))  # release them all at once
    for pid in pids:
        os.waitpid(pid, 0)
    with os.fdopen(r) as f:
        got = dict(line.split("=") for line in f.read().split())
    os.close(go_r)
    os.close(go_w)
    assert sorted(got) == names
    assert len(set(got.values())) == len(names)


def test_interfaces_of_unknown_pid() -> None:
    from lxctools.errors import PylError
    with pytest.raises(PylError, match="does not exist"):
        net.interfaces_of(2**22 + 12345)
