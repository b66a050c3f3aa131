"""Apply network plans to the kernel: the ONLY module of pyl that imports pyroute2.

pyroute2's rtnetlink message classes make and read the messages; kernel.netlink's plain socket
carries them, several in one datagram where a step needs several (IPRoute's own transport
costs more than the kernel's work: see kernel.netlink). pyroute2 costs ~30-60 ms to import
even so, so it is imported inside the functions that need it, never at module level
(``import lxctools.runtime.net`` stays cheap). NetlinkError is translated into
lxctools.errors here, at the boundary, and nowhere else.

The start choreography (see module docs of the start code) calls, in order:
  setup_host(plans, pid)      supervisor, host netns: create links, move container ends into pid's netns
  configure_inside(plans, st) child, already in the new netns: MAC/MTU/addresses/up/routes
  return_phys(plans, pid)     supervisor, while the netns still exists: give phys devices back
  teardown(st)                supervisor, after stop: delete what setup_host left on the host
"""

from __future__ import annotations

import errno
import json
import os
import pickle
import socket
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv6Interface, ip_address, ip_interface, ip_network
from pathlib import Path
from typing import Any, TypeVar

from lxctools.errors import ConfigError, KernelError, PermissionDeniedError, PylError, StartError
from lxctools.kernel import netlink
from lxctools.kernel.netlink import NetlinkError
from lxctools.runtime import ipam
from lxctools.runtime.devices import is_host_interface
from lxctools.runtime.netplan import Gateway, MacvlanMode, NetPlan, NetType

T = TypeVar("T")

IFA_F_NODAD = 0x02
_MACVLAN_MODES = {MacvlanMode.PRIVATE: 1, MacvlanMode.VEPA: 2, MacvlanMode.BRIDGE: 4, MacvlanMode.PASSTHRU: 8}


# ---------------------------------------------------------------------------------------- state --

@dataclass
class PhysState:
    """What to restore when a physical device comes back to the host."""

    index: int            # lxc.net index
    host_name: str
    container_name: str
    mtu: int
    mac: str


@dataclass
class LeaseState:
    lxcpath: str
    bridge_cidr: str
    container: str


class NetnsFd(int):
    """An open fd of a network namespace, given where a PID would name one by its process: the
    netlink worker sets up a namespace it made itself before the container's processes exist."""


@dataclass
class HostNetState:
    """Everything setup_host did on the host; JSON-serialisable (the supervisor stores it)."""

    pid: int
    veth_hosts: list[str] = field(default_factory=list)
    phys: list[PhysState] = field(default_factory=list)
    leases: list[LeaseState] = field(default_factory=list)
    # Per lxc.net index: auto-allocated address ("10.0.7.130/24") and auto gateway ("10.0.7.1").
    auto_ipv4: dict[str, str] = field(default_factory=dict)
    auto_gateway: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> HostNetState:
        raw = json.loads(text)
        return cls(pid=raw["pid"], veth_hosts=list(raw.get("veth_hosts", [])),
                   phys=[PhysState(**p) for p in raw.get("phys", [])],
                   leases=[LeaseState(**lease) for lease in raw.get("leases", [])],
                   auto_ipv4=dict(raw.get("auto_ipv4", {})), auto_gateway=dict(raw.get("auto_gateway", {})))


@dataclass(frozen=True)
class IfaceInfo:
    name: str
    mac: str
    mtu: int
    ipv4: list[str]      # "10.0.7.5/24"
    ipv6: list[str]      # global/ULA only; link-local is left out
    rx_bytes: int
    tx_bytes: int
    state: str           # "up" / "down"


# ------------------------------------------------------------------------------- error boundary --

# The part of pyroute2 pyl uses: its rtnetlink message classes, which make and read every
# message; kernel.netlink carries them. Not IPRoute: see kernel.netlink for what it cost.
_MESSAGE_MODULES = ("pyroute2.netlink.rtnl.ifinfmsg", "pyroute2.netlink.rtnl.ifaddrmsg",
                    "pyroute2.netlink.rtnl.rtmsg")


def load_pyroute2() -> None:
    """Load pyroute2's rtnetlink message classes, once per process.

    Not through the package's __init__, nor through IPRoute: those import every subsystem
    pyroute2 has (NDB, IPDB, asyncio with ssl, conntrack, ipset, wireguard, nl80211, plan9...),
    ~100-190 ms of the first request a netlink worker answers, where the message classes take
    ~30-60 ms. The package module is made from its spec without running it, so importing a
    submodule skips __init__. Should a pyroute2 version need its __init__ after all, the whole
    package is imported the usual way."""
    if "pyroute2" in sys.modules:
        return
    import importlib
    import importlib.util
    try:
        spec = importlib.util.find_spec("pyroute2")
    except ImportError:
        spec = None
    if spec is None or spec.submodule_search_locations is None:
        raise PylError("pyroute2 is not installed (container networking needs it)",
                       hint="pip install pyroute2, or apt-get install python3-pyroute2")
    sys.modules["pyroute2"] = importlib.util.module_from_spec(spec)
    try:
        for name in _MESSAGE_MODULES:
            importlib.import_module(name)
    except Exception:  # noqa: BLE001 - anything: this pyroute2 needs its __init__
        for name in [n for n in sys.modules if n == "pyroute2" or n.startswith("pyroute2.")]:
            del sys.modules[name]
        import pyroute2  # noqa: F401
        for name in _MESSAGE_MODULES:
            importlib.import_module(name)


def _translate(exc: Exception, what: str) -> PylError:
    code = _code(exc)
    text = f"{what}: {os.strerror(code) if code else exc}"
    if code == errno.EPERM:
        return PermissionDeniedError(text, hint="network setup needs CAP_NET_ADMIN (run as root)")
    return KernelError(text, code)


def _code(exc: Exception) -> int:
    return getattr(exc, "errno", None) or 0


# ------------------------------------------------------------------------------------ messages --

RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18
RTM_NEWADDR, RTM_GETADDR, RTM_NEWROUTE = 20, 22, 24
IFF_UP = 0x1
RT_TABLE_MAIN, RTPROT_STATIC, RTN_UNICAST, RT_SCOPE_LINK = 254, 4, 1, 253
_CREATE = netlink.NLM_F_CREATE | netlink.NLM_F_EXCL


def _message_class(name: str) -> Any:
    load_pyroute2()
    if name == "ifinfmsg":
        from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
        return ifinfmsg
    if name == "ifaddrmsg":
        from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
        return ifaddrmsg
    from pyroute2.netlink.rtnl.rtmsg import rtmsg
    return rtmsg


def _encode(class_name: str, kind: int, flags: int, fields: dict[str, int], attrs: list) -> bytearray:
    msg = _message_class(class_name)()
    for key, value in fields.items():
        msg[key] = value
    msg["attrs"] = attrs
    msg["header"]["type"] = kind
    msg["header"]["flags"] = flags
    msg.encode()
    return bytearray(msg.data)


def _decode(class_name: str, raw: bytes) -> Any:
    msg = _message_class(class_name)(raw)
    msg.decode()
    return msg


def _into(target: int) -> tuple[str, int]:
    """The attribute that puts a link into TARGET's namespace (a PID, or a NetnsFd)."""
    return ("IFLA_NET_NS_FD", int(target)) if isinstance(target, NetnsFd) else ("IFLA_NET_NS_PID", target)


def _link_message(kind: int, flags: int, index: int = 0, up: bool | None = None, attrs: Sequence = ()) -> bytearray:
    fields = {"index": index}
    if up is not None:
        fields.update(flags=IFF_UP if up else 0, change=IFF_UP)
    return _encode("ifinfmsg", kind, flags, fields, list(attrs))


def link_add(ifname: str, kind: str, *, up: bool = False, attrs: Sequence = (),
             data: Sequence = ()) -> bytearray:
    """RTM_NEWLINK creating IFNAME of KIND; DATA: its IFLA_INFO_DATA attributes."""
    info: list = [("IFLA_INFO_KIND", kind)]
    if data:
        info.append(("IFLA_INFO_DATA", {"attrs": list(data)}))
    return _link_message(RTM_NEWLINK, _CREATE, up=True if up else None,
                         attrs=[("IFLA_IFNAME", ifname), *attrs, ("IFLA_LINKINFO", {"attrs": info})])


def link_set(index: int, *, up: bool | None = None, attrs: Sequence = ()) -> bytearray:
    return _link_message(RTM_NEWLINK, 0, index, up, attrs)


def link_del(index: int) -> bytearray:
    return _link_message(RTM_DELLINK, 0, index)


def addr_add(index: int, interface: IPv4Interface | IPv6Interface, *, broadcast: str | None = None,
             flags: int = 0) -> bytearray:
    ip = str(interface.ip)
    v4 = interface.version == 4
    attrs: list = [("IFA_ADDRESS", ip)]  # the order pyroute2's IPRoute sends them in
    if broadcast:
        attrs.append(("IFA_BROADCAST", broadcast))
    if v4:
        attrs.append(("IFA_LOCAL", ip))
    if flags:
        attrs.append(("IFA_FLAGS", flags))
    fields = {"family": socket.AF_INET if v4 else socket.AF_INET6,
              "prefixlen": interface.network.prefixlen, "index": index}
    return _encode("ifaddrmsg", RTM_NEWADDR, _CREATE, fields, attrs)


def route_add(dst: Any, *, oif: int, gateway: Any = None, scope: int = 0) -> bytearray:
    """RTM_NEWROUTE to DST (an ip_network) in the main table, through OIF (and GATEWAY)."""
    attrs: list = [("RTA_DST", str(dst.network_address))] if dst.prefixlen else []
    if gateway is not None:
        attrs.append(("RTA_GATEWAY", str(gateway)))
    attrs.append(("RTA_OIF", oif))
    fields = {"family": socket.AF_INET if dst.version == 4 else socket.AF_INET6, "dst_len": dst.prefixlen,
              "table": RT_TABLE_MAIN, "proto": RTPROT_STATIC, "scope": scope, "type": RTN_UNICAST}
    return _encode("rtmsg", RTM_NEWROUTE, _CREATE, fields, attrs)


@contextmanager
def _rtnl() -> Iterator[socket.socket]:
    """A NETLINK_ROUTE socket of this thread's network namespace, for one operation (~0.02 ms
    to open: none is kept, and one made inside a container's namespace would hold it alive)."""
    load_pyroute2()
    sock = netlink.route_socket()
    try:
        yield sock
    finally:
        sock.close()


def _get_link(sock: socket.socket, name: str = "", index: int = 0) -> Any:
    """The link named NAME or numbered INDEX (one RTM_GETLINK: index, MTU and kind at once), or None."""
    attrs = [("IFLA_IFNAME", name)] if name else []
    try:
        answer = netlink.query(sock, _link_message(RTM_GETLINK, 0, index, attrs=attrs))
    except NetlinkError as exc:
        if exc.errno == errno.ENODEV:
            return None
        raise
    return _decode("ifinfmsg", answer[0]) if answer else None


def _links(sock: socket.socket) -> list[Any]:
    answer = netlink.query(sock, _link_message(RTM_GETLINK, netlink.NLM_F_DUMP))
    return [_decode("ifinfmsg", raw) for raw in answer]


def _addresses(sock: socket.socket, family: int = 0, index: int = 0) -> list[Any]:
    """The addresses of FAMILY (0: all) on link INDEX (0: every link). The kernel filters by
    index (strict checking); filtered here again for a kernel that ignores it."""
    request = _encode("ifaddrmsg", RTM_GETADDR, netlink.NLM_F_DUMP, {"family": family, "index": index}, [])
    found = [_decode("ifaddrmsg", raw) for raw in netlink.query(sock, request)]
    return [a for a in found if (not index or a["index"] == index) and (not family or a["family"] == family)]


def _lookup(name: str) -> int | None:
    """Index of the link NAME in this thread's network namespace, or None. One ioctl
    (if_nametoindex) where a dump would parse every link."""
    try:
        return socket.if_nametoindex(name)
    except OSError:
        return None


# ---------------------------------------------------------------------------------- setup_host --

def setup_host(plans: Sequence[NetPlan], pid: int, *, lxcpath: Path | None = None,
               net_rundir: Path | None = None) -> HostNetState:
    """Create host-side links for ``plans`` and put the container ends into the netns of ``pid``
    (a process, or a NetnsFd: then the state's pid is 0 until the caller knows the init's).

    On failure everything already created is removed again before the error propagates.
    ``lxcpath`` is needed only for ``ipv4.address = auto`` (lease file); ``net_rundir`` is where
    the default bridge keeps its state if it has to be started here.
    """
    state = HostNetState(pid=0 if isinstance(pid, NetnsFd) else pid)
    try:
        with _rtnl() as sock:
            for plan in plans:
                try:
                    if plan.type is NetType.VETH:
                        _setup_veth(sock, plan, pid, state, lxcpath, net_rundir)
                    elif plan.type in (NetType.MACVLAN, NetType.VLAN):
                        _setup_lower(sock, plan, pid)
                    elif plan.type is NetType.PHYS:
                        _setup_phys(sock, plan, pid, state)
                except NetlinkError as exc:
                    raise _setup_error(plan, exc) from exc
    except BaseException:
        try:
            teardown(state)
        except PylError:
            pass  # the original error is the one worth reporting
        raise
    return state


def _setup_error(plan: NetPlan, exc: Exception) -> PylError:
    code = _code(exc)
    if code == errno.EEXIST:
        if plan.type is NetType.VETH:
            return ConfigError(f"{plan.key('veth.pair')}: a link named {plan.veth_pair!r} already exists")
        return ConfigError(f"{plan.key('name')}: {plan.name!r} already exists in the container")
    if code == errno.EADDRNOTAVAIL and plan.hwaddr:
        return ConfigError(f"{plan.key('hwaddr')}: kernel refused {plan.hwaddr!r}")
    if code == errno.EINVAL and plan.mtu:
        return ConfigError(f"{plan.key('mtu')}: kernel refused MTU {plan.mtu} for {plan.name}")
    if code == errno.EOPNOTSUPP and plan.type in (NetType.MACVLAN, NetType.VLAN):
        # rtnetlink's answer for a link kind no driver registered (no module, none built in)
        return StartError(f"{plan.key('type')}: this kernel cannot make {plan.type.value} links",
                          hint="pyl-checkconfig lists what the kernel has")
    return _translate(exc, f"lxc.net.{plan.index} ({plan.type.value} {plan.name})")


def _bridge_info(sock: socket.socket, plan: NetPlan, net_rundir: Path | None) -> tuple[int, int, IPv4Interface | None]:
    """Index, MTU and primary IPv4 address of the plan's bridge (starting pyl's default bridge if needed)."""
    assert plan.link is not None
    idx = _lookup(plan.link)
    if idx is None and plan.link_is_default_bridge:
        from lxctools.runtime import bridge
        bridge.ensure_default_bridge(net_rundir)
        idx = _lookup(plan.link)
    if idx is None:
        raise ConfigError(f"{plan.key('link')}: bridge {plan.link!r} does not exist",
                          hint=f"create it, or use pyl's default bridge with pyl-net start")
    mtu = _bridge_mtu(plan.link, idx)
    if mtu is None:  # not a bridge, or a sysfs of another namespace: netlink says which
        link = _get_link(sock, plan.link)
        if link is None:
            raise ConfigError(f"{plan.key('link')}: bridge {plan.link!r} does not exist")
        kind = _kind(link)
        if kind != "bridge":
            raise ConfigError(f"{plan.key('link')}: {plan.link!r} is not a bridge (it is {kind or 'a plain device'})")
        idx, mtu = link["index"], link.get("IFLA_MTU")
    primary = None
    for addr in _addresses(sock, socket.AF_INET, idx):
        primary = IPv4Interface(f"{addr.get('IFA_ADDRESS')}/{addr['prefixlen']}")
        break
    return idx, mtu, primary


def _bridge_mtu(name: str, index: int, sys_class_net: str = "/sys/class/net") -> int | None:
    """The MTU of bridge NAME from sysfs (three small reads instead of a parsed RTM_GETLINK,
    ~1 ms of a start), or None if sysfs does not show NAME as a bridge with INDEX: a sysfs
    mounted for another network namespace falls back to netlink that way."""
    from lxctools.kernel.files import read_file
    folder = os.path.join(sys_class_net, name)
    try:
        if int(read_file(os.path.join(folder, "ifindex"))) != index or not os.path.isdir(os.path.join(folder, "bridge")):
            return None
        return int(read_file(os.path.join(folder, "mtu")))
    except (OSError, ValueError):
        return None


def _claim_static(plan: NetPlan, bridge_addr: IPv4Interface, lxcpath: Path, state: HostNetState) -> None:
    """Static addresses on the bridge's subnet enter the host-wide table (ipam.claim), so no
    'auto' address lands on them and no other running container holds them."""
    mine = [s.interface for s in plan.ipv4 if s.interface.ip in bridge_addr.network]
    if not mine:
        return
    from lxctools.paths import Layout, default_rundir
    from lxctools.runstate import read_runstate
    from lxctools.state import State

    def is_running(other_lxcpath: str, name: str) -> bool:
        return read_runstate(Layout(other_lxcpath, default_rundir()), name).state is not State.STOPPED

    lease = LeaseState(str(lxcpath), str(bridge_addr), plan.container_name)
    for interface in mine:
        try:
            ipam.claim(lxcpath, bridge_addr, plan.container_name, interface, is_running)
        except PylError as err:
            err.prefixed(plan.key("ipv4.address"))
            raise
        if lease not in state.leases:
            state.leases.append(lease)


def _kind(link: Any) -> str | None:
    info = link.get("IFLA_LINKINFO")
    return info.get("IFLA_INFO_KIND") if info else None


def _setup_veth(sock: socket.socket, plan: NetPlan, pid: int, state: HostNetState,
                lxcpath: Path | None, net_rundir: Path | None) -> None:
    assert plan.veth_pair is not None and plan.name is not None
    bridge_idx = bridge_mtu = bridge_addr = None
    if plan.link:
        bridge_idx, bridge_mtu, bridge_addr = _bridge_info(sock, plan, net_rundir)
    if plan.ipv4_auto or plan.ipv4_gateway is Gateway.AUTO:
        if bridge_addr is None:
            raise ConfigError(f"{plan.key('ipv4.address' if plan.ipv4_auto else 'ipv4.gateway')}: "
                              f"'auto' but bridge {plan.link!r} has no IPv4 address")
        if plan.ipv4_gateway is Gateway.AUTO:
            state.auto_gateway[str(plan.index)] = str(bridge_addr.ip)
        if plan.ipv4_auto:
            if lxcpath is None:
                raise PylError(f"{plan.key('ipv4.address')}: 'auto' needs the lxcpath for its lease file")
            address = ipam.allocate(lxcpath, bridge_addr, plan.container_name)
            state.leases.append(LeaseState(str(lxcpath), str(bridge_addr), plan.container_name))
            state.auto_ipv4[str(plan.index)] = str(address)
    if bridge_addr is not None and lxcpath is not None:
        _claim_static(plan, bridge_addr, lxcpath, state)

    # As LXC: without an explicit MTU both ends take the bridge's, so the bridge MTU never drops.
    mtu = plan.mtu or bridge_mtu
    peer: list = [("IFLA_IFNAME", plan.name), _into(pid)]
    host: list = []
    if mtu:
        peer.append(("IFLA_MTU", mtu))
        host.append(("IFLA_MTU", mtu))
    if plan.hwaddr:
        peer.append(("IFLA_ADDRESS", plan.hwaddr))
    if bridge_idx is not None:
        host.append(("IFLA_MASTER", bridge_idx))
    # One RTM_NEWLINK: host end created on the bridge and up, peer created directly in the netns.
    netlink.request(sock, [link_add(plan.veth_pair, "veth", up=True, attrs=host,
                                    data=[("VETH_INFO_PEER", {"attrs": peer})])])
    state.veth_hosts.append(plan.veth_pair)
    if plan.veth_ipv4_routes or plan.veth_ipv6_routes:
        host_idx = _lookup(plan.veth_pair)
        if host_idx is None:  # deleted by someone else between its creation and this lookup
            raise KernelError(f"{plan.key('veth.pair')}: {plan.veth_pair} vanished right after its creation",
                              errno.ENODEV)
        netlink.request(sock, [route_add(net, oif=host_idx)
                               for net in (*plan.veth_ipv4_routes, *plan.veth_ipv6_routes)])


def _setup_lower(sock: socket.socket, plan: NetPlan, pid: int) -> None:
    """macvlan / vlan: created on the host parent and born directly in the container's netns."""
    assert plan.link is not None
    parent = _lookup(plan.link)
    if parent is None:
        raise ConfigError(f"{plan.key('link')}: device {plan.link!r} does not exist")
    assert plan.name is not None
    attrs: list = [("IFLA_LINK", parent), _into(pid)]
    if plan.mtu:
        attrs.append(("IFLA_MTU", plan.mtu))
    if plan.hwaddr:
        attrs.append(("IFLA_ADDRESS", plan.hwaddr))
    if plan.type is NetType.MACVLAN:
        assert plan.macvlan_mode is not None
        kind, data = "macvlan", [("IFLA_MACVLAN_MODE", _MACVLAN_MODES[plan.macvlan_mode])]
    else:
        kind, data = "vlan", [("IFLA_VLAN_ID", plan.vlan_id)]
    netlink.request(sock, [link_add(plan.name, kind, attrs=attrs, data=data)])


def _setup_phys(sock: socket.socket, plan: NetPlan, pid: int, state: HostNetState) -> None:
    assert plan.link is not None and plan.name is not None
    idx = _lookup(plan.link)
    if idx is None:
        raise ConfigError(f"{plan.key('link')}: device {plan.link!r} does not exist")
    link = _get_link(sock, index=idx)
    if link is None:
        raise ConfigError(f"{plan.key('link')}: device {plan.link!r} does not exist")
    if _kind(link) == "bridge":
        raise ConfigError(f"{plan.key('link')}: {plan.link!r} is a bridge; type phys wants a device")
    state.phys.append(PhysState(plan.index, plan.link, plan.name, link.get("IFLA_MTU"),
                                link.get("IFLA_ADDRESS")))
    # Move and rename in one message: the kernel renames as part of the namespace change.
    netlink.request(sock, [link_set(idx, attrs=[("IFLA_IFNAME", plan.name), _into(pid)])])


# ---------------------------------------------------------------------------- configure_inside --

def configure_inside(plans: Sequence[NetPlan], state: HostNetState) -> None:
    """Run in the container's netns (before init): lo up, MAC/MTU, addresses, up, gateways.

    Every request goes out in one datagram, in that order (the kernel carries them out one by
    one: a route finds its link up and its address there). One refused does not stop the
    others; the first refusal is the error, and it fails the start, whose namespace then goes."""
    messages: list[bytearray] = []
    owners: list[NetPlan | None] = []  # whose request each message is: None for lo
    lo = _lookup("lo")
    if lo is not None:
        messages.append(link_set(lo, up=True))
        owners.append(None)
    for plan in plans:
        if plan.in_container:
            for msg in _configure_one(plan, state):
                messages.append(msg)
                owners.append(plan)
    if not messages:
        return
    with _rtnl() as sock:
        try:
            netlink.request(sock, messages)
        except NetlinkError as exc:
            owner = owners[exc.request]
            if owner is None:
                raise _translate(exc, "bringing up lo") from exc
            raise _setup_error(owner, exc) from exc


def _configure_one(plan: NetPlan, state: HostNetState) -> list[bytearray]:
    """The requests that configure PLAN's interface inside, in order."""
    assert plan.name is not None
    idx = _lookup(plan.name)
    if idx is None:
        raise PylError(f"lxc.net.{plan.index}: {plan.name!r} did not arrive in the container's network namespace")
    messages = []
    if plan.type is NetType.PHYS and (plan.hwaddr or plan.mtu):
        # veth/macvlan/vlan got these at creation; a moved device still has the host's values.
        settings: list = []
        if plan.hwaddr:
            settings.append(("IFLA_ADDRESS", plan.hwaddr))
        if plan.mtu:
            settings.append(("IFLA_MTU", plan.mtu))
        messages.append(link_set(idx, attrs=settings))

    v4 = list(plan.ipv4)
    auto = state.auto_ipv4.get(str(plan.index))
    for setting in v4:
        messages.append(addr_add(idx, setting.interface,
                                 broadcast=str(setting.broadcast) if int(setting.broadcast) else None))
    if auto:
        iface = IPv4Interface(auto)
        messages.append(addr_add(idx, iface, broadcast=str(iface.network.broadcast_address)))
    for v6 in plan.ipv6:
        # No DAD: a static address must be usable the moment the container is RUNNING, not a
        # second later when the tentative flag clears.
        messages.append(addr_add(idx, v6, flags=IFA_F_NODAD))
    if not plan.up:
        return messages
    messages.append(link_set(idx, up=True))

    v4_nets = [s.interface.network for s in v4] + ([IPv4Interface(auto).network] if auto else [])
    gw4 = plan.ipv4_gateway
    if gw4 is Gateway.AUTO:
        gw4 = IPv4Address(state.auto_gateway[str(plan.index)])
    messages += _default_routes(idx, gw4, v4_nets, version=4)
    messages += _default_routes(idx, plan.ipv6_gateway, [a.network for a in plan.ipv6], version=6)
    return messages


def _default_routes(idx: int, gateway: object, nets: list[Any], *, version: int) -> list[bytearray]:
    if gateway is None:
        return []
    default = ip_network("0.0.0.0/0" if version == 4 else "::/0")
    if gateway is Gateway.DEV:
        return [route_add(default, oif=idx, scope=RT_SCOPE_LINK)]
    gw = ip_address(str(gateway))
    routes = []
    if not any(gw in net for net in nets) and not gw.is_link_local:
        # As LXC: a gateway outside every local subnet first gets a device route of its own.
        routes.append(route_add(ip_network(f"{gw}/{gw.max_prefixlen}"), oif=idx, scope=RT_SCOPE_LINK))
    routes.append(route_add(default, oif=idx, gateway=gw))
    return routes


# ------------------------------------------------------------------------------ return/teardown --

def return_phys(plans: Sequence[NetPlan], pid: int) -> None:
    """Move every phys device out of pid's netns back to ours under its original name.

    Call while the container's netns still exists: once it dies the kernel returns real NICs
    as ``devN`` (and destroys virtual ones); teardown then repairs the name if it can.
    """
    moves = [(p.name, p.link) for p in plans if p.type is NetType.PHYS]
    if not moves:
        return
    host_pid = os.getpid()

    def inside() -> list[str]:
        problems = []
        with _rtnl() as sock:
            for name, host_name in moves:
                idx = _lookup(name)
                if idx is None:
                    continue  # already gone (or never arrived)
                try:
                    netlink.request(sock, [link_set(idx, up=False)])
                    netlink.request(sock, [link_set(idx, attrs=[("IFLA_NET_NS_PID", host_pid), ("IFLA_IFNAME", host_name)])])
                except NetlinkError as exc:
                    problems.append(f"{name} -> {host_name}: {exc.strerror}")
        return problems

    try:
        problems = in_netns(pid, inside)
    except PylError:
        return  # netns already gone: teardown recovers what the kernel gave back
    if problems:
        raise KernelError(f"returning physical devices: {'; '.join(problems)}", errno.EIO)


def teardown(state: HostNetState) -> None:
    """Remove what setup_host left on the host. Idempotent; already-gone links are not errors."""
    failures: list[str] = []
    with _rtnl() as sock:
        for name in state.veth_hosts:
            try:
                idx = _lookup(name)
                if idx is not None:
                    netlink.request(sock, [link_del(idx)])
            except NetlinkError as exc:
                if exc.errno != errno.ENODEV:
                    failures.append(f"deleting {name}: {exc.strerror}")
        for phys in state.phys:
            try:
                _restore_phys(sock, phys)
            except NetlinkError as exc:
                failures.append(f"restoring {phys.host_name}: {exc.strerror}")
    failures += _release_leases(state)
    if failures:
        raise KernelError(f"network teardown: {'; '.join(failures)}", errno.EIO)


def _release_leases(state: HostNetState) -> list[str]:
    """Give back the `auto` addresses of STATE; what failed, as messages."""
    failures = []
    for lease in state.leases:
        try:
            ipam.release(Path(lease.lxcpath), lease.bridge_cidr, lease.container)
        except OSError as exc:
            failures.append(f"releasing lease of {lease.container}: {exc.strerror}")
        except PylError as exc:  # a lease file mangled by hand: named, the rest of the teardown goes on
            failures.append(f"releasing lease of {lease.container}: {exc}")
    return failures


def host_links_left(state: HostNetState) -> list[str]:
    """STATE's veth host ends that still exist (sysfs: no netlink, no pyroute2)."""
    return [name for name in state.veth_hosts if is_host_interface(name)]


def release_after_exit(state: HostNetState, wait: float = 0.25) -> HostNetState | None:
    """Teardown's usual case without netlink, for the supervisor after the container's init died.

    A veth's host end goes with its peer when the container's network namespace dies (a few ms
    after init): wait for that by sysfs instead of deleting it, and release the address leases.
    Returns what still needs netlink (a host end still there after ``wait`` because something
    else holds the namespace, physical devices to restore) for teardown(), or None. This keeps a
    stop from needing pyroute2, whose worker may have been let go hours ago."""
    import time
    deadline = time.monotonic() + wait
    left = host_links_left(state)
    while left and time.monotonic() < deadline:
        time.sleep(0.0005)
        left = [name for name in left if is_host_interface(name)]
    failures = _release_leases(state)
    if failures:
        raise KernelError(f"network teardown: {'; '.join(failures)}", errno.EIO)
    if not left and not state.phys:
        return None
    return HostNetState(pid=state.pid, veth_hosts=left, phys=list(state.phys))


def _restore_phys(sock: socket.socket, phys: PhysState) -> None:
    idx = _lookup(phys.host_name)
    if idx is None:
        # The netns died first: the kernel moved the device back, maybe as devN. Find it by MAC.
        for link in _links(sock):
            if link.get("IFLA_ADDRESS") == phys.mac and _kind(link) is None and link.get("IFLA_IFNAME") != "lo":
                idx = link["index"]
                netlink.request(sock, [link_set(idx, up=False), link_set(idx, attrs=[("IFLA_IFNAME", phys.host_name)])])
                break
    if idx is None:
        return  # a virtual device dies with its netns; nothing to give back
    link = _get_link(sock, index=idx)
    if link is None:
        return
    fix: list = []
    if link.get("IFLA_MTU") != phys.mtu:
        fix.append(("IFLA_MTU", phys.mtu))
    if link.get("IFLA_ADDRESS") != phys.mac:
        fix.append(("IFLA_ADDRESS", phys.mac))
    if fix:
        netlink.request(sock, [link_set(idx, attrs=fix)])


# ------------------------------------------------------------------------ bridges and raw links --

def ensure_bridge(name: str, cidr: IPv4Interface) -> bool:
    """Make sure bridge ``name`` exists, has ``cidr`` and is up; True if it was created here."""
    created = False
    try:
        with _rtnl() as sock:
            idx = _lookup(name)
            if idx is None:
                netlink.request(sock, [link_add(name, "bridge")])
                created = True
                idx = _lookup(name)
                if idx is None:  # deleted by someone else right after its creation
                    raise NetlinkError(errno.ENODEV)
            have = {(a.get("IFA_ADDRESS"), a["prefixlen"]) for a in _addresses(sock, socket.AF_INET, idx)}
            requests = []
            if (str(cidr.ip), cidr.network.prefixlen) not in have:
                requests.append(addr_add(idx, cidr, broadcast=str(cidr.network.broadcast_address)))
            requests.append(link_set(idx, up=True))
            netlink.request(sock, requests)
    except NetlinkError as exc:
        if created:
            delete_link(name)
        raise _translate(exc, f"setting up bridge {name}") from exc
    return created


def move_link(name: str, new_name: str, target: int) -> bool:
    """Move link NAME of this thread's namespace into TARGET's (a PID, or a NetnsFd), renamed
    NEW_NAME there; False if there is no NAME here. NetlinkError if the kernel refuses."""
    with _rtnl() as sock:
        idx = _lookup(name)
        if idx is None:
            return False
        netlink.request(sock, [link_set(idx, attrs=[_into(target), ("IFLA_IFNAME", new_name)])])
    return True


def delete_link(name: str) -> bool:
    """Delete host link ``name``; False if it was not there."""
    with _rtnl() as sock:
        idx = _lookup(name)
        if idx is None:
            return False
        try:
            netlink.request(sock, [link_del(idx)])
        except NetlinkError as exc:
            if exc.errno == errno.ENODEV:
                return False
            raise _translate(exc, f"deleting {name}") from exc
    return True


def within_netns(pid: int, func: Callable[[], T]) -> T:
    """Run ``func`` in pid's network namespace (or a NetnsFd's) in this thread (setns there and
    back): for the netlink worker, whose sockets then open inside the container. Cheaper than
    in_netns's fork."""
    from lxctools.kernel import ns

    if isinstance(pid, NetnsFd):
        target = os.dup(pid)
    else:
        try:
            target = ns.open_ns(pid, "net")
        except FileNotFoundError:
            raise PylError(f"process {pid} does not exist (container not running?)") from None
    try:
        return ns.within_net_namespace(target, func)
    finally:
        os.close(target)


def new_netns() -> NetnsFd:
    """A new, empty network namespace (lo only), held by the returned fd alone; this thread stays
    in its own. For the netlink worker (single-threaded: unshare moves the whole process)."""
    from lxctools.kernel import ns
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        ns.unshare(ns.CLONE_NEWNET)
        try:
            return NetnsFd(os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC))
        finally:
            ns.setns(own, ns.CLONE_NEWNET)
    finally:
        os.close(own)


# ----------------------------------------------------------------------------------- inspection --

def in_netns(pid: int, func: Callable[[], T]) -> T:
    """Run ``func`` in a forked child that joined pid's network namespace; return its (pickled) result.

    Measured against ``IPRoute(netns='/proc/PID/ns/net')`` (which also forks, to open its socket):
    see the report in tests/integration/test_net_speed.py. The fork keeps setns out of the caller.
    """
    from lxctools.kernel import ns

    try:
        fd = ns.open_ns(pid, "net")
    except FileNotFoundError:
        raise PylError(f"process {pid} does not exist (container not running?)") from None
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        try:
            os.close(read_end)
            ns.setns(fd, ns.CLONE_NEWNET)
            payload = pickle.dumps((True, func()))
        except BaseException as exc:  # noqa: BLE001 - everything goes back to the parent
            try:
                payload = pickle.dumps((False, exc))
            except Exception:  # noqa: BLE001
                payload = pickle.dumps((False, PylError(f"{type(exc).__name__}: {exc}")))
        try:
            with os.fdopen(write_end, "wb") as out:
                out.write(payload)
        finally:
            os._exit(0)
    os.close(fd)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as src:
        data = src.read()
    os.waitpid(child, 0)
    if not data:
        raise PylError(f"network namespace helper for pid {pid} died")
    ok, value = pickle.loads(data)
    if not ok:
        if isinstance(value, PylError):
            raise value
        if isinstance(value, NetlinkError):
            raise _translate(value, f"netns of pid {pid}") from value
        raise value
    return value


def _iface_info(link: Any, addrs: list[Any]) -> IfaceInfo:
    idx = link["index"]
    v4, v6 = [], []
    for a in addrs:
        if a["index"] != idx:
            continue
        iface = ip_interface(f"{a.get('IFA_ADDRESS')}/{a['prefixlen']}")
        if isinstance(iface, IPv6Interface):
            if not iface.ip.is_link_local:
                v6.append(str(iface))
        else:
            v4.append(str(iface))
    stats = link.get("IFLA_STATS64") or link.get("IFLA_STATS") or {}
    return IfaceInfo(name=link.get("IFLA_IFNAME"), mac=link.get("IFLA_ADDRESS") or "",
                     mtu=link.get("IFLA_MTU") or 0, ipv4=v4, ipv6=v6,
                     rx_bytes=stats.get("rx_bytes", 0), tx_bytes=stats.get("tx_bytes", 0),
                     state="up" if link["flags"] & 1 else "down")


def _list_ifaces() -> list[IfaceInfo]:
    with _rtnl() as sock:
        addrs = _addresses(sock)
        return [_iface_info(link, addrs) for link in _links(sock)]


def interfaces_of(pid: int) -> list[IfaceInfo]:
    """Interfaces of the container whose init is ``pid``, read through netlink in its netns."""
    return in_netns(pid, _list_ifaces)


def host_link_stats(name: str) -> IfaceInfo | None:
    """The host-side view of one link (e.g. a veth host end); None if it does not exist."""
    try:
        with _rtnl() as sock:
            idx = _lookup(name)
            link = None if idx is None else _get_link(sock, index=idx)
            if link is None:
                return None
            return _iface_info(link, _addresses(sock, index=link["index"]))
    except NetlinkError as exc:
        raise _translate(exc, f"reading link {name}") from exc


def link_names(pid: int | None = None) -> list[str]:
    """Names of all links in the host netns, or in pid's netns (tests use it to check for leaks)."""
    def names() -> list[str]:
        with _rtnl() as sock:
            return [link.get("IFLA_IFNAME") for link in _links(sock)]
    return names() if pid is None else in_netns(pid, names)
