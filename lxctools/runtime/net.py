"""Apply network plans to the kernel: the ONLY module of pyl that imports pyroute2.

pyroute2 costs ~200 ms to import, so it is imported inside the functions that need it, never at
module level (``import lxctools.runtime.net`` stays cheap). NetlinkError is translated into
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
from ipaddress import IPv4Address, IPv4Interface, IPv6Interface, ip_address, ip_interface
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from lxctools.errors import ConfigError, KernelError, PermissionDeniedError, PylError, StartError
from lxctools.runtime import ipam
from lxctools.runtime.devices import is_host_interface
from lxctools.runtime.netplan import Gateway, MacvlanMode, NetPlan, NetType

if TYPE_CHECKING:
    from pyroute2 import IPRoute

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


def _into(target: int) -> dict[str, int]:
    """The netlink attribute that puts a link into TARGET's namespace (a PID, or a NetnsFd)."""
    return {"net_ns_fd": int(target)} if isinstance(target, NetnsFd) else {"net_ns_pid": target}


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

def load_pyroute2() -> None:
    """Load the part of pyroute2 pyl uses (IPRoute and its exceptions), once per process.

    Not through the package's __init__: that imports every subsystem pyroute2 has (NDB, IPDB,
    conntrack, ipset, wireguard, nl80211, plan9...), ~40 of the ~140 ms a netlink worker pays
    before its first request, and a start after the worker left waits for all of it. The package
    module is made from its spec without running it, so importing a submodule skips __init__;
    IPRoute and NetlinkError are set on it for ``from pyroute2 import ...``. Should a pyroute2
    version need its __init__ after all, the whole package is imported the usual way."""
    if "pyroute2" in sys.modules:
        return
    import importlib.util
    try:
        spec = importlib.util.find_spec("pyroute2")
    except ImportError:
        spec = None
    if spec is None or spec.submodule_search_locations is None:
        raise PylError("pyroute2 is not installed (container networking needs it)",
                       hint="pip install pyroute2, or apt-get install python3-pyroute2")
    package = importlib.util.module_from_spec(spec)
    sys.modules["pyroute2"] = package
    try:
        from pyroute2.iproute.linux import IPRoute
        from pyroute2.netlink.exceptions import NetlinkError
    except Exception:  # noqa: BLE001 - anything: this pyroute2 needs its __init__
        for name in [n for n in sys.modules if n == "pyroute2" or n.startswith("pyroute2.")]:
            del sys.modules[name]
        import pyroute2  # noqa: F401
        return
    package.IPRoute, package.NetlinkError = IPRoute, NetlinkError


def _netlink_error_type() -> type[Exception]:
    load_pyroute2()
    from pyroute2.netlink.exceptions import NetlinkError
    return NetlinkError


def _translate(exc: Exception, what: str) -> PylError:
    code = getattr(exc, "code", None) or getattr(exc, "errno", None) or 0
    text = f"{what}: {os.strerror(code) if code else exc}"
    if code == errno.EPERM:
        return PermissionDeniedError(text, hint="network setup needs CAP_NET_ADMIN (run as root)")
    return KernelError(text, code)


def _code(exc: Exception) -> int:
    return getattr(exc, "code", None) or getattr(exc, "errno", None) or 0


# A long-lived process (the netlink worker) keeps one socket to its own network namespace
# (keep_host_socket): an IPRoute costs ~1 ms to open and close, and a start asks twice. Sockets
# made inside a container's namespace are never kept: one would hold that namespace alive.
_home: tuple[int, int] | None = None  # (st_dev, st_ino) of the namespace whose socket is kept
_kept: IPRoute | None = None


def keep_host_socket() -> None:
    """Reuse one IPRoute for the requests made from the calling thread's network namespace."""
    global _home
    _home = _thread_netns()


def _thread_netns() -> tuple[int, int]:
    st = os.stat("/proc/thread-self/ns/net")
    return st.st_dev, st.st_ino


@contextmanager
def _iproute() -> Iterator[IPRoute]:
    global _kept
    load_pyroute2()
    from pyroute2 import IPRoute
    keep = _home is not None and _thread_netns() == _home
    if keep and _kept is not None:
        ipr = _kept
    else:
        # groups=0: we only ask, we never listen for events; ext_ack gives the kernel's reason string.
        ipr = IPRoute(groups=0)
        if keep:
            _kept = ipr
    try:
        yield ipr
    except (PylError, _netlink_error_type()):
        if not keep:
            ipr.close()
        raise  # a refusal leaves the socket as good as it was
    except BaseException:
        # Interrupted inside pyroute2: replies may still be queued on the socket. Start afresh.
        if keep:
            _kept = None
        ipr.close()
        raise
    else:
        if not keep:
            ipr.close()


def _get_link(ipr: IPRoute, name: str) -> Any:
    """The link named NAME (one RTM_GETLINK: index, MTU and kind at once), or None."""
    NetlinkError = _netlink_error_type()
    try:
        found = ipr.link("get", ifname=name)
    except NetlinkError as exc:
        if _code(exc) == errno.ENODEV:
            return None
        raise
    return found[0] if found else None


def _lookup(name: str) -> int | None:
    """Index of the link NAME in this thread's network namespace, or None. One ioctl
    (if_nametoindex) where pyroute2's link_lookup dumps and parses every link (~1 ms each, twice
    in every start's critical path)."""
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
    NetlinkError = _netlink_error_type()
    try:
        with _iproute() as ipr:
            for plan in plans:
                try:
                    if plan.type is NetType.VETH:
                        _setup_veth(ipr, plan, pid, state, lxcpath, net_rundir)
                    elif plan.type in (NetType.MACVLAN, NetType.VLAN):
                        _setup_lower(ipr, plan, pid)
                    elif plan.type is NetType.PHYS:
                        _setup_phys(ipr, plan, pid, state)
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


def _bridge_info(ipr: IPRoute, plan: NetPlan, net_rundir: Path | None) -> tuple[int, int, IPv4Interface | None]:
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
        link = _get_link(ipr, plan.link)
        if link is None:
            raise ConfigError(f"{plan.key('link')}: bridge {plan.link!r} does not exist")
        kind = _kind(link)
        if kind != "bridge":
            raise ConfigError(f"{plan.key('link')}: {plan.link!r} is not a bridge (it is {kind or 'a plain device'})")
        idx, mtu = link["index"], link.get("IFLA_MTU")
    primary = None
    for addr in ipr.get_addr(family=2, index=idx):
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


def _setup_veth(ipr: IPRoute, plan: NetPlan, pid: int, state: HostNetState,
                lxcpath: Path | None, net_rundir: Path | None) -> None:
    assert plan.veth_pair is not None and plan.name is not None
    bridge_idx = bridge_mtu = bridge_addr = None
    if plan.link:
        bridge_idx, bridge_mtu, bridge_addr = _bridge_info(ipr, plan, net_rundir)
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
    peer: dict[str, Any] = {"ifname": plan.name, **_into(pid)}
    if mtu:
        peer["mtu"] = mtu
    if plan.hwaddr:
        peer["address"] = plan.hwaddr
    extra: dict[str, Any] = {}
    if mtu:
        extra["mtu"] = mtu
    if bridge_idx is not None:
        extra["master"] = bridge_idx
    # One RTM_NEWLINK: host end created on the bridge and up, peer created directly in the netns.
    ipr.link("add", ifname=plan.veth_pair, kind="veth", peer=peer, state="up", **extra)
    state.veth_hosts.append(plan.veth_pair)
    if plan.veth_ipv4_routes or plan.veth_ipv6_routes:
        host_idx = _lookup(plan.veth_pair)
        for net in (*plan.veth_ipv4_routes, *plan.veth_ipv6_routes):
            ipr.route("add", dst=str(net), oif=host_idx, family=10 if net.version == 6 else 2)


def _setup_lower(ipr: IPRoute, plan: NetPlan, pid: int) -> None:
    """macvlan / vlan: created on the host parent and born directly in the container's netns."""
    assert plan.link is not None
    parent = _lookup(plan.link)
    if parent is None:
        raise ConfigError(f"{plan.key('link')}: device {plan.link!r} does not exist")
    spec: dict[str, Any] = {"ifname": plan.name, "link": parent, **_into(pid)}
    if plan.type is NetType.MACVLAN:
        assert plan.macvlan_mode is not None
        spec.update(kind="macvlan", macvlan_mode=_MACVLAN_MODES[plan.macvlan_mode])
    else:
        spec.update(kind="vlan", vlan_id=plan.vlan_id)
    if plan.mtu:
        spec["mtu"] = plan.mtu
    if plan.hwaddr:
        spec["address"] = plan.hwaddr
    ipr.link("add", **spec)


def _setup_phys(ipr: IPRoute, plan: NetPlan, pid: int, state: HostNetState) -> None:
    assert plan.link is not None and plan.name is not None
    idx = _lookup(plan.link)
    if idx is None:
        raise ConfigError(f"{plan.key('link')}: device {plan.link!r} does not exist")
    link = ipr.get_links(idx)[0]
    if _kind(link) == "bridge":
        raise ConfigError(f"{plan.key('link')}: {plan.link!r} is a bridge; type phys wants a device")
    state.phys.append(PhysState(plan.index, plan.link, plan.name, link.get("IFLA_MTU"),
                                link.get("IFLA_ADDRESS")))
    # Move and rename in one message: the kernel renames as part of the namespace change.
    ipr.link("set", index=idx, ifname=plan.name, **_into(pid))


# ---------------------------------------------------------------------------- configure_inside --

def configure_inside(plans: Sequence[NetPlan], state: HostNetState) -> None:
    """Run in the container's netns (before init): lo up, MAC/MTU, addresses, up, gateways."""
    NetlinkError = _netlink_error_type()
    with _iproute() as ipr:
        try:
            lo = _lookup("lo")
            if lo is not None:
                ipr.link("set", index=lo, state="up")
        except NetlinkError as exc:
            raise _translate(exc, "bringing up lo") from exc
        for plan in plans:
            if not plan.in_container:
                continue
            try:
                _configure_one(ipr, plan, state)
            except NetlinkError as exc:
                raise _setup_error(plan, exc) from exc


def _configure_one(ipr: IPRoute, plan: NetPlan, state: HostNetState) -> None:
    assert plan.name is not None
    idx = _lookup(plan.name)
    if idx is None:
        raise PylError(f"lxc.net.{plan.index}: {plan.name!r} did not arrive in the container's network namespace")
    if plan.type is NetType.PHYS and (plan.hwaddr or plan.mtu):
        # veth/macvlan/vlan got these at creation; a moved device still has the host's values.
        settings: dict[str, Any] = {}
        if plan.hwaddr:
            settings["address"] = plan.hwaddr
        if plan.mtu:
            settings["mtu"] = plan.mtu
        ipr.link("set", index=idx, **settings)

    v4 = list(plan.ipv4)
    auto = state.auto_ipv4.get(str(plan.index))
    for setting in v4:
        ipr.addr("add", index=idx, address=str(setting.interface.ip), prefixlen=setting.interface.network.prefixlen,
                 broadcast=str(setting.broadcast) if int(setting.broadcast) else None)
    if auto:
        iface = IPv4Interface(auto)
        ipr.addr("add", index=idx, address=str(iface.ip), prefixlen=iface.network.prefixlen,
                 broadcast=str(iface.network.broadcast_address))
    for v6 in plan.ipv6:
        # No DAD: a static address must be usable the moment the container is RUNNING, not a
        # second later when the tentative flag clears.
        ipr.addr("add", index=idx, address=str(v6.ip), prefixlen=v6.network.prefixlen, flags=IFA_F_NODAD,
                 family=10)
    if not plan.up:
        return
    ipr.link("set", index=idx, state="up")

    v4_nets = [s.interface.network for s in v4] + ([IPv4Interface(auto).network] if auto else [])
    gw4 = plan.ipv4_gateway
    if gw4 is Gateway.AUTO:
        gw4 = IPv4Address(state.auto_gateway[str(plan.index)])
    _add_default(ipr, idx, gw4, v4_nets, family=2)
    _add_default(ipr, idx, plan.ipv6_gateway, [a.network for a in plan.ipv6], family=10)


def _add_default(ipr: IPRoute, idx: int, gateway: object, nets: list[Any], *, family: int) -> None:
    if gateway is None:
        return
    dst = "0.0.0.0/0" if family == 2 else "::/0"
    if gateway is Gateway.DEV:
        ipr.route("add", dst=dst, oif=idx, scope=253, family=family)  # scope link
        return
    gw = ip_address(str(gateway))
    if not any(gw in net for net in nets) and not gw.is_link_local:
        # As LXC: a gateway outside every local subnet first gets a device route of its own.
        ipr.route("add", dst=f"{gw}/{gw.max_prefixlen}", oif=idx, scope=253, family=family)
    ipr.route("add", dst=dst, gateway=str(gw), oif=idx, family=family)


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
        NetlinkError = _netlink_error_type()
        problems = []
        with _iproute() as ipr:
            for name, host_name in moves:
                idx = _lookup(name)
                if idx is None:
                    continue  # already gone (or never arrived)
                try:
                    ipr.link("set", index=idx, state="down")
                    ipr.link("set", index=idx, net_ns_pid=host_pid, ifname=host_name)
                except NetlinkError as exc:
                    problems.append(f"{name} -> {host_name}: {os.strerror(exc.code)}")
        return problems

    try:
        problems = in_netns(pid, inside)
    except PylError:
        return  # netns already gone: teardown recovers what the kernel gave back
    if problems:
        raise KernelError(f"returning physical devices: {'; '.join(problems)}", errno.EIO)


def teardown(state: HostNetState) -> None:
    """Remove what setup_host left on the host. Idempotent; already-gone links are not errors."""
    NetlinkError = _netlink_error_type()
    failures: list[str] = []
    with _iproute() as ipr:
        for name in state.veth_hosts:
            try:
                idx = _lookup(name)
                if idx is not None:
                    ipr.link("del", index=idx)
            except NetlinkError as exc:
                if exc.code != errno.ENODEV:
                    failures.append(f"deleting {name}: {os.strerror(exc.code)}")
        for phys in state.phys:
            try:
                _restore_phys(ipr, phys)
            except NetlinkError as exc:
                failures.append(f"restoring {phys.host_name}: {os.strerror(exc.code)}")
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


def _restore_phys(ipr: IPRoute, phys: PhysState) -> None:
    idx = _lookup(phys.host_name)
    if idx is None:
        # The netns died first: the kernel moved the device back, maybe as devN. Find it by MAC.
        for link in ipr.get_links():
            if link.get("IFLA_ADDRESS") == phys.mac and _kind(link) is None and link.get("IFLA_IFNAME") != "lo":
                idx = link["index"]
                ipr.link("set", index=idx, state="down")
                ipr.link("set", index=idx, ifname=phys.host_name)
                break
    if idx is None:
        return  # a virtual device dies with its netns; nothing to give back
    link = ipr.get_links(idx)[0]
    fix: dict[str, Any] = {}
    if link.get("IFLA_MTU") != phys.mtu:
        fix["mtu"] = phys.mtu
    if link.get("IFLA_ADDRESS") != phys.mac:
        fix["address"] = phys.mac
    if fix:
        ipr.link("set", index=idx, **fix)


# ------------------------------------------------------------------------ bridges and raw links --

def ensure_bridge(name: str, cidr: IPv4Interface) -> bool:
    """Make sure bridge ``name`` exists, has ``cidr`` and is up; True if it was created here."""
    NetlinkError = _netlink_error_type()
    created = False
    try:
        with _iproute() as ipr:
            idx = _lookup(name)
            if idx is None:
                ipr.link("add", ifname=name, kind="bridge")
                created = True
                idx = _lookup(name)
            have = {(a.get("IFA_ADDRESS"), a["prefixlen"]) for a in ipr.get_addr(family=2, index=idx)}
            if (str(cidr.ip), cidr.network.prefixlen) not in have:
                ipr.addr("add", index=idx, address=str(cidr.ip), prefixlen=cidr.network.prefixlen,
                         broadcast=str(cidr.network.broadcast_address))
            ipr.link("set", index=idx, state="up")
    except NetlinkError as exc:
        if created:
            delete_link(name)
        raise _translate(exc, f"setting up bridge {name}") from exc
    return created


def delete_link(name: str) -> bool:
    """Delete host link ``name``; False if it was not there."""
    NetlinkError = _netlink_error_type()
    with _iproute() as ipr:
        idx = _lookup(name)
        if idx is None:
            return False
        try:
            ipr.link("del", index=idx)
        except NetlinkError as exc:
            if exc.code == errno.ENODEV:
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
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        ns.setns(target, ns.CLONE_NEWNET)
        try:
            return func()
        finally:
            ns.setns(own, ns.CLONE_NEWNET)
    finally:
        os.close(target)
        os.close(own)


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
        if isinstance(value, _netlink_error_type()):
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
    with _iproute() as ipr:
        addrs = list(ipr.get_addr())
        return [_iface_info(link, addrs) for link in ipr.get_links()]


def interfaces_of(pid: int) -> list[IfaceInfo]:
    """Interfaces of the container whose init is ``pid``, read through netlink in its netns."""
    return in_netns(pid, _list_ifaces)


def host_link_stats(name: str) -> IfaceInfo | None:
    """The host-side view of one link (e.g. a veth host end); None if it does not exist."""
    NetlinkError = _netlink_error_type()
    try:
        with _iproute() as ipr:
            idx = _lookup(name)
            if idx is None:
                return None
            return _iface_info(ipr.get_links(idx)[0], list(ipr.get_addr(index=idx)))
    except NetlinkError as exc:
        raise _translate(exc, f"reading link {name}") from exc


def link_names(pid: int | None = None) -> list[str]:
    """Names of all links in the host netns, or in pid's netns (tests use it to check for leaks)."""
    def names() -> list[str]:
        with _iproute() as ipr:
            return [link.get("IFLA_IFNAME") for link in ipr.get_links()]
    return names() if pid is None else in_netns(pid, names)
