"""plan_networks: every key, every error (no kernel involved)."""

from __future__ import annotations

import os
import subprocess
import sys
from ipaddress import IPv4Address, IPv4Interface, IPv4Network, IPv6Address, IPv6Interface, IPv6Network
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lxctools.errors import ConfigError
from lxctools.runtime import ipam
from lxctools.runtime.netplan import Gateway, MacvlanMode, NetType, host_link_names, needs_netns, plan_networks


def plan(values: dict, name: str = "web1", **kw):
    return plan_networks(values, container_name=name, random_suffix=lambda n: "r" * n, **kw)


def veth(**extra) -> dict:
    values = {"lxc.net.0.type": "veth", "lxc.net.0.link": "pylbr0", "lxc.net.0.flags": "up"}
    values.update({f"lxc.net.0.{k}": v for k, v in extra.items()})
    return values


def test_full_veth() -> None:
    (p,) = plan(veth(**{"name": "lan0", "hwaddr": "00:16:3E:A1:B5:1A", "mtu": "1400",
                        "ipv4.address": ["10.0.7.5/24", "10.0.8.5/16 10.0.255.254"], "ipv4.gateway": "10.0.7.1",
                        "ipv6.address": ["fd00::5/64", "fd01::5"], "ipv6.gateway": "fd00::1",
                        "veth.pair": "vhost0", "veth.ipv4.route": ["192.0.2.0/24"],
                        "veth.ipv6.route": "2001:db8::/64", "veth.mode": "bridge"}))
    assert p.type is NetType.VETH and p.name == "lan0" and p.link == "pylbr0" and p.link_is_default_bridge
    assert p.hwaddr == "00:16:3e:a1:b5:1a" and p.mtu == 1400 and p.up
    assert [s.interface for s in p.ipv4] == [IPv4Interface("10.0.7.5/24"), IPv4Interface("10.0.8.5/16")]
    assert [s.broadcast for s in p.ipv4] == [IPv4Address("10.0.7.255"), IPv4Address("10.0.255.254")]
    assert p.ipv4_gateway == IPv4Address("10.0.7.1") and p.ipv6_gateway == IPv6Address("fd00::1")
    assert p.ipv6 == (IPv6Interface("fd00::5/64"), IPv6Interface("fd01::5/64"))
    assert p.veth_pair == "vhost0" and host_link_names([p]) == ["vhost0"]
    assert p.veth_ipv4_routes == (IPv4Network("192.0.2.0/24"),)
    assert p.veth_ipv6_routes == (IPv6Network("2001:db8::/64"),)


def test_defaults_names_and_generated_pair() -> None:
    values = veth()
    values.update({"lxc.net.1.type": "veth", "lxc.net.2.type": "empty", "lxc.net.3.type": "macvlan",
                   "lxc.net.3.link": "eth0", "lxc.net.3.name": "eth1"})
    p0, p1, p2, p3 = plan(values, name="my-box_1234")
    assert (p0.name, p1.name, p2.name, p3.name) == ("eth0", "eth2", None, "eth1")
    assert p0.veth_pair == "pylmybox1rrrrrr" and p1.veth_pair == "pylmybox1rrrrr1"
    assert p1.link is None and not p1.link_is_default_bridge and not p1.up
    assert p3.macvlan_mode is MacvlanMode.PRIVATE
    assert needs_netns((p0, p1, p2, p3))


def test_random_pair_names_unique_and_short() -> None:
    values = {f"lxc.net.{i}.type": "veth" for i in range(5)}
    plans = plan_networks(values, container_name="averyveryverylongcontainername")
    pairs = host_link_names(plans)
    assert len(set(pairs)) == 5 and all(len(n) <= 15 and n.startswith("pylaveryv") for n in pairs)


def test_index_order_and_gaps() -> None:
    plans = plan({"lxc.net.10.type": "empty", "lxc.net.2.type": "veth", "lxc.uts.name": "x"})
    assert [p.index for p in plans] == [2, 10]


def test_other_types() -> None:
    (m,) = plan({"lxc.net.0.type": "macvlan", "lxc.net.0.link": "eth0", "lxc.net.0.macvlan.mode": "bridge"})
    assert m.macvlan_mode is MacvlanMode.BRIDGE
    (v,) = plan({"lxc.net.0.type": "vlan", "lxc.net.0.link": "eth0", "lxc.net.0.vlan.id": "42"})
    assert v.vlan_id == 42 and v.name == "eth0"
    (ph,) = plan({"lxc.net.0.type": "phys", "lxc.net.0.link": "enp3s0"})
    assert ph.link == "enp3s0" and ph.name == "eth0"
    (n,) = plan({"lxc.net.0.type": "none"})
    assert not n.in_container and not needs_netns((n,))
    (e,) = plan({"lxc.net.0.type": "empty", "lxc.net.0.flags": "up"})
    assert e.name is None and not e.in_container


def test_auto_and_dev() -> None:
    (p,) = plan(veth(**{"ipv4.address": "auto", "ipv4.gateway": "auto", "ipv6.gateway": "dev"}))
    assert p.ipv4_auto and p.ipv4 == () and p.ipv4_gateway is Gateway.AUTO and p.ipv6_gateway is Gateway.DEV


def test_classful_default_prefix_and_small_nets() -> None:
    (p,) = plan(veth(**{"ipv4.address": ["10.1.2.3", "172.16.0.1", "192.168.1.1", "10.0.0.1/32"]}))
    assert [s.interface.network.prefixlen for s in p.ipv4] == [8, 16, 24, 32]
    assert p.ipv4[3].broadcast == IPv4Address(0)


def test_empty_multi_lines_ignored() -> None:
    (p,) = plan(veth(**{"ipv4.address": ["", "10.0.7.5/24"]}))
    assert len(p.ipv4) == 1


ERRORS = [
    ({"lxc.net.0.link": "br0"}, r"lxc.net.0.type: missing"),
    ({"lxc.net.0.type": "bogus"}, r"lxc.net.0.type: unknown network type 'bogus'"),
    ({"lxc.net.0.type": "ipvlan"}, r"lxc.net.0.type: 'ipvlan' is not supported"),
    ({"lxc.net.0.type": "veth", "lxc.net.0.script.up": "/x"}, r"lxc.net.0.script.up: not supported"),
    ({"lxc.net.0.type": "veth", "lxc.net.0.frobnicate": "1"}, r"lxc.net.0.frobnicate: unknown network key"),
    ({"lxc.net.0.type": ["veth", "empty"]}, r"lxc.net.0.type: given 2 times"),
    ({"lxc.net.0.type": "veth", "lxc.net.0.veth.pair": "averyveryverylongname"},
     r"lxc.net.0.veth.pair: 'averyveryverylongname' is longer than 15 characters"),
    ({"lxc.net.0.type": "veth", "lxc.net.0.veth.pair": "a/b"}, r"lxc.net.0.veth.pair: 'a/b' is not a valid"),
    ({"lxc.net.0.type": "veth", "lxc.net.0.name": "eth 0"}, r"lxc.net.0.name: 'eth 0' is not a valid"),
    ({"lxc.net.0.type": "veth", "lxc.net.0.name": "lo"}, r"lxc.net.0.name: 'lo' is the container's loopback"),
    ({"lxc.net.0.type": "veth", "lxc.net.0.link": "x" * 16}, r"lxc.net.0.link: .* longer than 15"),
    ({"lxc.net.0.type": "macvlan"}, r"lxc.net.0.link: required for type macvlan"),
    ({"lxc.net.0.type": "phys"}, r"lxc.net.0.link: required for type phys"),
    ({"lxc.net.0.type": "vlan", "lxc.net.0.link": "eth0"}, r"lxc.net.0.vlan.id: required"),
    ({"lxc.net.0.type": "vlan", "lxc.net.0.link": "eth0", "lxc.net.0.vlan.id": "4095"}, r"lxc.net.0.vlan.id: '4095'"),
    ({"lxc.net.0.type": "veth", "lxc.net.0.vlan.id": "4"}, r"lxc.net.0.vlan.id: only valid for type vlan"),
    ({"lxc.net.0.type": "macvlan", "lxc.net.0.link": "e", "lxc.net.0.veth.pair": "v"},
     r"lxc.net.0.veth.pair: only valid for type veth"),
    ({"lxc.net.0.type": "veth", "lxc.net.0.macvlan.mode": "bridge"}, r"lxc.net.0.macvlan.mode: only valid"),
    ({"lxc.net.0.type": "macvlan", "lxc.net.0.link": "e", "lxc.net.0.macvlan.mode": "x"},
     r"lxc.net.0.macvlan.mode: 'x' is not one of"),
    ({"lxc.net.0.type": "empty", "lxc.net.0.link": "br0"}, r"lxc.net.0.link: meaningless for type empty"),
    ({"lxc.net.0.type": "veth", "lxc.net.0.flags": "down"}, r"lxc.net.0.flags: 'down' is not a valid flag"),
    ({"lxc.net.0.type": "veth", "lxc.net.0.hwaddr": "00:16:3e:xx:xx:xx"},
     r"lxc.net.0.hwaddr: '00:16:3e:xx:xx:xx' still has 'x' placeholders"),
    ({"lxc.net.0.type": "veth", "lxc.net.0.hwaddr": "00:16:3e:1"}, r"lxc.net.0.hwaddr: .* is not a MAC"),
    ({"lxc.net.0.type": "veth", "lxc.net.0.hwaddr": "01:16:3e:00:00:01"}, r"lxc.net.0.hwaddr: .* multicast"),
    ({"lxc.net.0.type": "veth", "lxc.net.0.mtu": "12"}, r"lxc.net.0.mtu: '12' is not an MTU"),
    ({"lxc.net.0.type": "veth", "lxc.net.0.mtu": "big"}, r"lxc.net.0.mtu: 'big'"),
    ({"lxc.net.0.type": "veth", "lxc.net.0.ipv4.address": "10.0.0.300/24"}, r"lxc.net.0.ipv4.address: '10.0.0.300/24'"),
    ({"lxc.net.0.type": "veth", "lxc.net.0.ipv4.address": "10.0.0.3/24 a b"}, r"lxc.net.0.ipv4.address: "),
    ({"lxc.net.0.type": "veth", "lxc.net.0.ipv4.address": ["auto", "10.0.0.3/24"]},
     r"lxc.net.0.ipv4.address: 'auto' cannot be combined"),
    ({"lxc.net.0.type": "veth", "lxc.net.0.ipv4.address": "auto"}, r"lxc.net.0.ipv4.address: 'auto' needs a veth"),
    ({"lxc.net.0.type": "veth", "lxc.net.0.flags": "up", "lxc.net.0.ipv4.gateway": "auto"},
     r"lxc.net.0.ipv4.gateway: 'auto' needs a veth"),
    ({"lxc.net.0.type": "veth", "lxc.net.0.ipv4.gateway": "10.0.0.1"}, r"lxc.net.0.ipv4.gateway: a gateway needs"),
    ({"lxc.net.0.type": "veth", "lxc.net.0.flags": "up", "lxc.net.0.ipv4.gateway": "fd00::1"},
     r"lxc.net.0.ipv4.gateway: 'fd00::1' is not an IPv4"),
    ({"lxc.net.0.type": "veth", "lxc.net.0.ipv6.address": "10.0.0.1/24"}, r"lxc.net.0.ipv6.address: '10.0.0.1/24'"),
    ({"lxc.net.0.type": "veth", "lxc.net.0.ipv6.address": "auto"}, r"lxc.net.0.ipv6.address: 'auto' is not"),
    ({"lxc.net.0.type": "veth", "lxc.net.0.link": "br", "lxc.net.0.flags": "up", "lxc.net.0.ipv6.gateway": "auto"},
     r"lxc.net.0.ipv6.gateway: 'auto' is not supported"),
    ({"lxc.net.0.type": "veth", "lxc.net.0.veth.ipv4.route": "10.0.0.1/24"}, r"lxc.net.0.veth.ipv4.route: .*host bits"),
    ({"lxc.net.0.type": "veth", "lxc.net.0.veth.ipv6.route": "10.0.0.0/24"}, r"lxc.net.0.veth.ipv6.route: "),
    ({"lxc.net.0.type": "veth", "lxc.net.0.veth.mode": "router"}, r"lxc.net.0.veth.mode: 'router' is not supported"),
    ({"lxc.net.0.type": "none", "lxc.net.1.type": "veth"}, r"lxc.net.0.type: 'none' .* cannot be combined"),
    ({"lxc.net.0.type": "veth", "lxc.net.0.name": "a", "lxc.net.1.type": "veth", "lxc.net.1.name": "a"},
     r"lxc.net.1.name: 'a' already used by lxc.net.0"),
    ({"lxc.net.0.type": "veth", "lxc.net.0.veth.pair": "v", "lxc.net.1.type": "veth", "lxc.net.1.veth.pair": "v"},
     r"lxc.net.1.veth.pair: 'v' already used"),
    ({"lxc.net.0.type": "phys", "lxc.net.0.link": "e", "lxc.net.1.type": "phys", "lxc.net.1.link": "e"},
     r"lxc.net.0.link: 'e' moved into the container twice"),
]


@pytest.mark.parametrize(("values", "message"), ERRORS)
def test_errors_name_the_key(values: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        plan(values)
    assert "\n" not in str(info.value)


def test_ipam_ranges_do_not_overlap() -> None:
    cidr = IPv4Interface("10.0.7.1/24")
    d0, d1 = ipam.dhcp_range(cidr)
    p0, p1 = ipam.pool_range(cidr)
    assert (str(d0), str(d1), str(p0), str(p1)) == ("10.0.7.2", "10.0.7.127", "10.0.7.128", "10.0.7.254")
    with pytest.raises(ConfigError):
        ipam.pool_range(IPv4Interface("10.0.7.1/30"))


def test_ipam_stable_and_exclusive(tmp_path) -> None:
    a = ipam.allocate(tmp_path, "10.0.7.1/24", "a")
    assert ipam.allocate(tmp_path, "10.0.7.1/24", "a") == a  # same container, same address
    others = {ipam.allocate(tmp_path, "10.0.7.1/24", f"c{i}") for i in range(50)}
    assert a not in others and len(others) == 50
    ipam.release(tmp_path, "10.0.7.1/24", "a")
    assert ipam.allocate(tmp_path, "10.0.7.1/24", "a") == a  # restart: same address back
    ipam.release(tmp_path, "10.0.7.1/24", "a", forget=True)
    assert "a" not in ipam.leases(tmp_path, "10.0.7.1/24")


def test_ipam_a_restart_with_the_same_address_writes_no_lease(tmp_path) -> None:
    # The lease file lives in the lxcpath (ext4 on most hosts, where each rewrite's rename
    # cost ~1 ms of a start and of a stop); whether a lease is in use is the host table's.
    cidr = "10.0.9.1/24"
    a = ipam.allocate(tmp_path, cidr, "a")
    path = ipam.lease_path(tmp_path, IPv4Interface(cidr))
    written = path.stat()
    assert ipam.leases(tmp_path, cidr)["a"] == {"address": str(a.ip), "active": True}
    ipam.release(tmp_path, cidr, "a")
    assert ipam.leases(tmp_path, cidr)["a"] == {"address": str(a.ip), "active": False}
    assert ipam.allocate(tmp_path, cidr, "a") == a
    after = path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (written.st_ino, written.st_mtime_ns)


def test_ipam_a_lease_left_marked_active_by_an_older_pyl_blocks_nothing(tmp_path) -> None:
    # After a reboot (the host table was in the run dir) no container runs, whatever a lease
    # file of an older pyl says: the one free address goes to the container asking.
    import json
    cidr = "10.9.1.1/29"  # pool .4-.6
    path = ipam.lease_path(tmp_path, IPv4Interface(cidr))
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"old": {"address": "10.9.1.4", "active": True}}))
    assert {ipam.allocate(tmp_path, cidr, f"c{i}") for i in range(3)} == {
        IPv4Interface(f"10.9.1.{i}/29") for i in (4, 5, 6)}
    assert "active" not in json.loads(path.read_text())["c0"]


_NOT_A_LEASE = st.one_of(
    st.none(), st.integers(), st.text(max_size=8), st.lists(st.integers(), max_size=2),
    st.fixed_dictionaries({}, optional={"address": st.one_of(st.none(), st.integers(), st.text(max_size=12)),
                                        "mac": st.text(max_size=4)}))


@given(entry=_NOT_A_LEASE)
def test_ipam_a_mangled_lease_is_refused_with_the_file_and_entry_named(tmp_path_factory, entry) -> None:
    # A lease file edited by hand: refused in one line that names the file and the entry,
    # never a KeyError or TypeError, and the file is left as found.
    import json
    from lxctools.errors import PylError
    lxcpath = tmp_path_factory.mktemp("lp")
    cidr = "10.9.2.1/24"
    path = ipam.lease_path(lxcpath, IPv4Interface(cidr))
    path.parent.mkdir(parents=True)
    text = json.dumps({"good": {"address": "10.9.2.200"}, "bad": entry})
    path.write_text(text)
    if isinstance(entry, dict) and isinstance(entry.get("address"), str) and ipam._is_ipv4(entry["address"]):
        return  # hypothesis made a valid lease
    for call in (lambda: ipam.allocate(lxcpath, cidr, "new"), lambda: ipam.leases(lxcpath, cidr)):
        with pytest.raises(PylError, match=r"corrupt lease file \(the lease of 'bad' has no IPv4") as err:
            call()
        assert str(path) in str(err.value) and err.value.hint
    assert path.read_text() == text


@pytest.mark.parametrize("table, problem", [
    ([], "not a JSON object"),
    ({"10.9.3.200": "/srv/a"}, "owner of 10.9.3.200 is not"),
    ({"10.9.3.200": ["/srv/a"]}, "owner of 10.9.3.200 is not"),
    ({"not-an-ip": ["/srv/a", "c"]}, "'not-an-ip' is not an IPv4 address"),
])
def test_ipam_a_mangled_host_table_is_refused_and_a_stop_still_goes_on(tmp_path, table, problem) -> None:
    import json
    from lxctools.errors import PylError
    from lxctools.runtime import net
    cidr = "10.9.3.1/24"
    path = ipam.host_table_path(IPv4Interface(cidr))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(table))
    try:
        with pytest.raises(PylError, match=f"{path}: corrupt lease file .*{problem}"):
            ipam.allocate(tmp_path, cidr, "c")
        # a stop's teardown names the problem among its failures instead of dying on it
        state = net.HostNetState(pid=1, leases=[net.LeaseState(str(tmp_path), cidr, "c")])
        [failure] = net._release_leases(state)
        assert failure.startswith(f"releasing lease of c: {path}: corrupt lease file (")
    finally:
        path.unlink()


def test_ipam_exhaustion(tmp_path) -> None:
    from lxctools.errors import PylError
    got = {ipam.allocate(tmp_path, "10.9.0.1/29", f"c{i}") for i in range(3)}  # pool .4-.6
    assert len(got) == 3
    with pytest.raises(PylError, match="no free address"):
        ipam.allocate(tmp_path, "10.9.0.1/29", "late")


def test_ipam_two_lxcpaths_on_one_bridge_never_share_an_address(tmp_path) -> None:
    # The bridge is the host's: a running container of another lxcpath holds its address there.
    from lxctools.errors import PylError
    one, two = tmp_path / "one", tmp_path / "two"
    got = [ipam.allocate(one if i % 2 else two, "10.9.0.1/28", f"c{i}") for i in range(7)]  # pool .8-.14
    assert len(set(got)) == 7
    with pytest.raises(PylError, match="no free address"):
        ipam.allocate(one, "10.9.0.1/28", "late")
    ipam.release(two, "10.9.0.1/28", "c0")  # stopped: its address is free for the other lxcpath
    assert ipam.allocate(one, "10.9.0.1/28", "late") == got[0]
    ipam.release(one, "10.9.0.1/28", "late")
    assert ipam.allocate(two, "10.9.0.1/28", "c0") == got[0]  # and back to its owner on restart
    table = ipam.host_table_path(IPv4Interface("10.9.0.1/28"))
    assert str(table).startswith(os.environ["PYL_RUNDIR"])  # never the host's /run/pyl in a test


def test_ipam_static_addresses_are_held_while_their_container_runs(tmp_path) -> None:
    from lxctools.errors import ConfigError, StartError
    cidr = "10.9.0.1/28"  # pool .8-.14
    running = {("/srv/a", "web")}
    is_running = lambda lxcpath, name: (lxcpath, name) in running  # noqa: E731
    for i in range(8, 15):  # every pool address but .12 is someone's static one
        if i != 12:
            ipam.claim(Path("/srv/a"), cidr, f"s{i}", IPv4Interface(f"10.9.0.{i}/28"), is_running)
    assert ipam.allocate(tmp_path, cidr, "auto1") == IPv4Interface("10.9.0.12/28")
    ipam.release(Path("/srv/a"), cidr, "s9")   # stopped: its static address is free again
    assert ipam.allocate(tmp_path, cidr, "auto2") == IPv4Interface("10.9.0.9/28")

    with pytest.raises(ConfigError, match="bridge's own address"):
        ipam.claim(tmp_path, cidr, "x", IPv4Interface("10.9.0.1/28"), is_running)
    ipam.claim(Path("/srv/a"), cidr, "web", IPv4Interface("10.9.0.3/28"), is_running)
    with pytest.raises(StartError, match="in use by container web of /srv/a"):
        ipam.claim(tmp_path, cidr, "other", IPv4Interface("10.9.0.3/28"), is_running)
    running.clear()  # web died without a release (a crash): its entry is taken over
    ipam.claim(tmp_path, cidr, "other", IPv4Interface("10.9.0.3/28"), is_running)
    # a container's own static address survives its auto allocation on another interface
    ipam.claim(tmp_path, cidr, "both", IPv4Interface("10.9.0.4/28"), is_running)
    ipam.release(tmp_path, cidr, "auto1")
    ipam.allocate(tmp_path, cidr, "both")
    with pytest.raises(StartError, match="in use by container both"):
        running.add((str(tmp_path), "both"))
        ipam.claim(tmp_path, cidr, "late", IPv4Interface("10.9.0.4/28"), is_running)


def test_import_net_does_not_import_pyroute2() -> None:
    code = ("import sys, lxctools.runtime.net, lxctools.runtime.netplan, lxctools.runtime.ipam, "
            "lxctools.runtime.bridge; sys.exit('pyroute2' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_bridge_and_ipam_do_not_import_pyroute2_at_all() -> None:
    import ast
    import pathlib
    import lxctools.runtime
    root = pathlib.Path(lxctools.runtime.__file__).parent
    for name in ("bridge.py", "ipam.py", "netplan.py"):
        tree = ast.parse((root / name).read_text())
        mods = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        mods += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
        assert not [m for m in mods if m.startswith("pyroute2")], name


@given(st.integers(min_value=0, max_value=40))
def test_random_suffixes_are_lowercase_alphanumerics_of_the_length_asked(n: int) -> None:
    from lxctools.runtime.netplan import _random_suffix
    suffix = _random_suffix(n)
    assert len(suffix) == n and all(c in "abcdefghijklmnopqrstuvwxyz0123456789" for c in suffix)
