"""The rtnetlink messages pyl makes (runtime.net's encoders over pyroute2's message classes) and
their transport (kernel.netlink): the same bytes as pyroute2's own IPRoute API would send, and
a batch's acknowledgements and refusals read right from a real kernel (in a forked child, in a
network namespace of its own)."""

from __future__ import annotations

import errno
import os
import pickle
from ipaddress import IPv4Interface, IPv6Interface, ip_network

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lxctools.kernel import netlink
from lxctools.runtime import net
from tests.conftest import requires_root

pytest.importorskip("pyroute2")


def _ipbatch():
    from pyroute2.iproute.linux import IPBatch  # pyroute2's full API: the reference
    return IPBatch()


def _compiled(call) -> bytes:
    """What pyroute2's IPRoute API puts on the wire for CALL(ipbatch)."""
    batch = _ipbatch()
    call(batch)
    return bytes(batch.batch)


def _same_message(ours: bytes, theirs: bytes) -> None:
    """Equal as sent: the transport adds NLM_F_REQUEST|NLM_F_ACK and sets the sequence number
    and port, which pyroute2 has in its compiled header already."""
    length, kind, flags, _seq, _port = netlink.HEADER.unpack_from(ours)
    assert (length, kind, flags | netlink.NLM_F_REQUEST | netlink.NLM_F_ACK) == netlink.HEADER.unpack_from(theirs)[:3]
    assert ours[16:] == theirs[16:]


def test_veth_on_a_bridge_with_its_peer_in_a_namespace():
    ours = net.link_add("pyl0", "veth", up=True, attrs=[("IFLA_MTU", 1400), ("IFLA_MASTER", 3)],
                        data=[("VETH_INFO_PEER", {"attrs": [("IFLA_IFNAME", "eth0"), ("IFLA_NET_NS_FD", 5),
                                                           ("IFLA_MTU", 1400),
                                                           ("IFLA_ADDRESS", "00:16:3e:00:00:01")]})])
    theirs = _compiled(lambda b: b.link("add", ifname="pyl0", kind="veth", state="up", mtu=1400, master=3,
                                        peer={"ifname": "eth0", "net_ns_fd": 5, "mtu": 1400,
                                              "address": "00:16:3e:00:00:01"}))
    _same_message(ours, theirs)


def test_macvlan_vlan_and_bridge():
    _same_message(net.link_add("mv0", "macvlan", attrs=[("IFLA_LINK", 4), ("IFLA_NET_NS_PID", 77)],
                               data=[("IFLA_MACVLAN_MODE", 4)]),
                  _compiled(lambda b: b.link("add", ifname="mv0", kind="macvlan", link=4, net_ns_pid=77,
                                             macvlan_mode=4)))
    _same_message(net.link_add("vl42", "vlan", attrs=[("IFLA_LINK", 4)], data=[("IFLA_VLAN_ID", 42)]),
                  _compiled(lambda b: b.link("add", ifname="vl42", kind="vlan", link=4, vlan_id=42)))
    _same_message(net.link_add("pylbr9", "bridge"), _compiled(lambda b: b.link("add", ifname="pylbr9", kind="bridge")))


def test_link_set_and_delete():
    _same_message(net.link_set(7, up=True), _compiled(lambda b: b.link("set", index=7, state="up")))
    _same_message(net.link_set(7, up=False), _compiled(lambda b: b.link("set", index=7, state="down")))
    _same_message(net.link_set(7, attrs=[("IFLA_ADDRESS", "00:16:3e:00:00:02"), ("IFLA_MTU", 1400)]),
                  _compiled(lambda b: b.link("set", index=7, address="00:16:3e:00:00:02", mtu=1400)))
    _same_message(net.link_set(7, attrs=[("IFLA_NET_NS_PID", 1), ("IFLA_IFNAME", "eth3")]),
                  _compiled(lambda b: b.link("set", index=7, net_ns_pid=1, ifname="eth3")))
    _same_message(net.link_del(7), _compiled(lambda b: b.link("del", index=7)))


@settings(max_examples=60, deadline=None)
@given(index=st.integers(1, 2**31 - 1), address=st.integers(1, 2**32 - 2), prefix=st.integers(1, 32))
def test_ipv4_addresses_as_pyroute2_encodes_them(index, address, prefix):
    iface = IPv4Interface((address, prefix))
    broadcast = str(iface.network.broadcast_address)
    _same_message(net.addr_add(index, iface, broadcast=broadcast),
                  _compiled(lambda b: b.addr("add", index=index, address=str(iface.ip), prefixlen=prefix,
                                             broadcast=broadcast)))


@settings(max_examples=40, deadline=None)
@given(index=st.integers(1, 2**31 - 1), address=st.integers(1, 2**128 - 1), prefix=st.integers(1, 128))
def test_ipv6_addresses_without_dad_as_pyroute2_encodes_them(index, address, prefix):
    iface = IPv6Interface((address, prefix))
    _same_message(net.addr_add(index, iface, flags=net.IFA_F_NODAD),
                  _compiled(lambda b: b.addr("add", index=index, address=str(iface.ip), prefixlen=prefix,
                                             flags=net.IFA_F_NODAD, family=10)))


def test_routes():
    default4, default6 = ip_network("0.0.0.0/0"), ip_network("::/0")
    _same_message(net.route_add(default4, oif=5, gateway="10.9.0.1"),
                  _compiled(lambda b: b.route("add", dst="0.0.0.0/0", gateway="10.9.0.1", oif=5, family=2)))
    _same_message(net.route_add(default4, oif=5, scope=net.RT_SCOPE_LINK),
                  _compiled(lambda b: b.route("add", dst="0.0.0.0/0", oif=5, scope=253, family=2)))
    _same_message(net.route_add(ip_network("10.1.2.3/32"), oif=5, scope=net.RT_SCOPE_LINK),
                  _compiled(lambda b: b.route("add", dst="10.1.2.3/32", oif=5, scope=253, family=2)))
    _same_message(net.route_add(default6, oif=5, gateway="fe80::1"),
                  _compiled(lambda b: b.route("add", dst="::/0", gateway="fe80::1", oif=5, family=10)))
    _same_message(net.route_add(ip_network("fd00:1::/64"), oif=9),
                  _compiled(lambda b: b.route("add", dst="fd00:1::/64", oif=9, family=10)))


# ------------------------------------------------------------------------ against the kernel --

def _in_new_netns(func):
    """FUNC's result (or exception), from a forked child in a network namespace of its own."""
    from lxctools.kernel import ns
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        os.close(read_end)
        try:
            ns.unshare(ns.CLONE_NEWNET)
            payload = pickle.dumps((True, func()))
        except BaseException as exc:  # noqa: BLE001 - all of it goes back to the test
            payload = pickle.dumps((False, exc))
        with os.fdopen(write_end, "wb") as out:
            out.write(payload)
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as src:
        data = src.read()
    os.waitpid(child, 0)
    ok, value = pickle.loads(data)
    if not ok:
        raise value
    return value


def _flags_of_lo() -> int:
    with net._rtnl() as sock:
        return net._get_link(sock, "lo")["flags"]


def _batch_with_a_refusal():
    """lo up, an address on a link that does not exist, an address on lo: the refusal is the
    second request's, and the third was carried out all the same."""
    with net._rtnl() as sock:
        try:
            netlink.request(sock, [net.link_set(1, up=True),
                                   net.addr_add(4242, IPv4Interface("10.77.0.1/24")),
                                   net.addr_add(1, IPv4Interface("10.78.0.1/24"))])
        except netlink.NetlinkError as exc:
            refusal = (exc.errno, exc.request)
        else:
            refusal = None
        on_lo = sorted(f"{a.get('IFA_ADDRESS')}/{a['prefixlen']}" for a in net._addresses(sock, 2, 1))
        # The socket answers the next request normally: nothing of the batch was left queued.
        netlink.request(sock, [net.link_set(1, up=True)])
        return refusal, on_lo, bool(net._get_link(sock, "lo")["flags"] & net.IFF_UP)


@requires_root
def test_a_batch_reports_its_first_refusal_with_its_position():
    refusal, on_lo, lo_up = _in_new_netns(_batch_with_a_refusal)
    assert refusal == (errno.ENODEV, 1)
    assert on_lo == ["10.78.0.1/24", "127.0.0.1/8"]
    assert lo_up


def _queries():
    with net._rtnl() as sock:
        missing = net._get_link(sock, "pyl-no-such")
        names = [link.get("IFLA_IFNAME") for link in net._links(sock)]
        by_index = net._get_link(sock, index=1).get("IFLA_IFNAME")
        return missing, names, by_index


@requires_root
def test_queries_a_get_and_a_dump():
    missing, names, by_index = _in_new_netns(_queries)
    assert missing is None  # ENODEV is "no such link", not an error
    assert names == ["lo"] and by_index == "lo"


@requires_root
def test_lo_starts_down_in_a_new_namespace():
    # The premise of configure_inside's first request.
    assert not _in_new_netns(_flags_of_lo) & net.IFF_UP


def test_a_refusal_survives_pickling_with_its_position():
    copy = pickle.loads(pickle.dumps(netlink.NetlinkError(errno.EEXIST, 3)))
    assert (copy.errno, copy.request, copy.strerror) == (errno.EEXIST, 3, os.strerror(errno.EEXIST))
    assert isinstance(copy, OSError)


def test_a_truncated_datagram_yields_only_whole_messages():
    whole = netlink.message(netlink.NLMSG_DONE, 0, b"\0\0\0\0")
    data = bytes(whole) + bytes(whole)[:10]
    assert [m[0] for m in netlink._walk(data)] == [netlink.NLMSG_DONE]
    assert list(netlink._walk(netlink.HEADER.pack(8, 3, 0, 0, 0))) == []  # a length below the header's
