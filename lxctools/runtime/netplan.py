"""Network plans: turn ``lxc.net.N.*`` keys into frozen NetPlan values, validating everything first.

Pure logic, no kernel and no pyroute2: every ConfigError a network config can cause is raised here,
naming the key, before a single link is created. ``lxctools.runtime.net`` applies the plans.
"""

from __future__ import annotations

import enum
import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address, IPv4Interface, IPv4Network, IPv6Address, IPv6Interface, IPv6Network

from lxctools.config import lines as config_lines
from lxctools.errors import ConfigError

IFNAMSIZ = 15  # usable bytes of a Linux interface name (IFNAMSIZ 16 minus the NUL)
DEFAULT_BRIDGE = "pylbr0"

_KEY = re.compile(r"^lxc\.net\.(\d+)\.(.+)$")
_MAC = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")


class NetType(enum.StrEnum):
    VETH = "veth"
    MACVLAN = "macvlan"
    VLAN = "vlan"
    PHYS = "phys"
    EMPTY = "empty"
    NONE = "none"


class MacvlanMode(enum.StrEnum):
    PRIVATE = "private"
    VEPA = "vepa"
    BRIDGE = "bridge"
    PASSTHRU = "passthru"


class Gateway(enum.StrEnum):
    """Symbolic gateways; a concrete one is an IPv4Address/IPv6Address instead."""

    AUTO = "auto"  # the primary address of the bridge the veth is attached to
    DEV = "dev"    # default route straight out of the device (no next hop)


@dataclass(frozen=True)
class IPv4Setting:
    interface: IPv4Interface
    broadcast: IPv4Address

    @classmethod
    def of(cls, interface: IPv4Interface, broadcast: IPv4Address | None = None) -> IPv4Setting:
        # LXC computes the broadcast when none is given; /31 and /32 have none, the kernel wants 0.
        if broadcast is None:
            broadcast = (interface.network.broadcast_address if interface.network.prefixlen < 31
                         else IPv4Address(0))
        return cls(interface, broadcast)


@dataclass(frozen=True)
class NetPlan:
    """One ``lxc.net.N`` entry, validated. ``name`` is the name inside the container."""

    index: int
    type: NetType
    name: str | None = None                 # None only for empty/none
    link: str | None = None                 # bridge (veth) or parent/physical device
    link_is_default_bridge: bool = False    # setup may create pyl's default bridge on demand
    hwaddr: str | None = None
    mtu: int | None = None
    up: bool = False
    ipv4: tuple[IPv4Setting, ...] = ()
    ipv4_auto: bool = False                 # allocate from the bridge subnet (ipam)
    ipv4_gateway: IPv4Address | Gateway | None = None
    ipv6: tuple[IPv6Interface, ...] = ()
    ipv6_gateway: IPv6Address | Gateway | None = None
    veth_pair: str | None = None            # host-side veth name (given or generated)
    veth_ipv4_routes: tuple[IPv4Network, ...] = ()
    veth_ipv6_routes: tuple[IPv6Network, ...] = ()
    macvlan_mode: MacvlanMode | None = None
    vlan_id: int | None = None
    container_name: str = field(default="", compare=False)

    def key(self, sub: str) -> str:
        return f"lxc.net.{self.index}.{sub}"

    @property
    def in_container(self) -> bool:
        """True when the plan puts a link into the container's netns."""
        return self.type not in (NetType.EMPTY, NetType.NONE)


# Keys LXC knows that pyl deliberately does not implement: fail loudly instead of ignoring them.
_UNSUPPORTED = {
    "ipvlan.mode", "ipvlan.isolation", "l2proxy", "script.up", "script.down",
    "veth.vlan.id", "veth.vlan.tagged.id", "veth.n_rxqueues", "veth.n_txqueues",
}
_KNOWN = {
    "type", "name", "link", "flags", "hwaddr", "mtu", "ipv4.address", "ipv4.gateway",
    "ipv6.address", "ipv6.gateway", "veth.pair", "veth.mode", "veth.ipv4.route", "veth.ipv6.route",
    "macvlan.mode", "vlan.id",
}
_ONLY_FOR = {
    "veth.pair": NetType.VETH, "veth.mode": NetType.VETH, "veth.ipv4.route": NetType.VETH,
    "veth.ipv6.route": NetType.VETH, "macvlan.mode": NetType.MACVLAN, "vlan.id": NetType.VLAN,
}
_MULTI = {"ipv4.address", "ipv6.address", "veth.ipv4.route", "veth.ipv6.route"}


def plan_networks(values: Mapping[str, str | list[str]], *, container_name: str,
                  default_bridge: str = DEFAULT_BRIDGE,
                  random_suffix: Callable[[int], str] | None = None) -> tuple[NetPlan, ...]:
    """Validate every ``lxc.net.N.*`` key and return one NetPlan per N, in index order.

    ``random_suffix(n)`` returns n characters for generated veth host names (tests pass a fixed one).
    """
    groups: dict[int, dict[str, list[str]]] = {}
    for key, raw in values.items():
        m = _KEY.match(key)
        if not m:
            continue
        index, sub = int(m.group(1)), m.group(2)
        if sub in _UNSUPPORTED:
            raise ConfigError(f"{key}: not supported by pyl")
        if sub not in _KNOWN:
            raise ConfigError(f"{key}: unknown network key")
        items = [v.strip() for v in config_lines(raw)]
        if sub in _MULTI:
            items = [v for v in items if v]  # an empty line clears the list in LXC
        elif len(items) > 1:
            raise ConfigError(f"{key}: given {len(items)} times; only one value allowed")
        groups.setdefault(index, {})[sub] = items

    suffix = random_suffix or _random_suffix
    plans = [_plan_one(i, groups[i], container_name, default_bridge) for i in sorted(groups)]
    plans = _assign_names(plans, container_name, suffix)
    _check_whole(plans)
    return tuple(plans)


def host_link_names(plans: tuple[NetPlan, ...] | list[NetPlan]) -> list[str]:
    """Names of links pyl creates in the host netns for these plans (veth host ends)."""
    return [p.veth_pair for p in plans if p.type is NetType.VETH and p.veth_pair]


def needs_netns(plans: tuple[NetPlan, ...] | list[NetPlan]) -> bool:
    """False only for ``type = none``: the container shares the host's network namespace."""
    return not any(p.type is NetType.NONE for p in plans)


# --------------------------------------------------------------------------------------------------

def _single(group: dict[str, list[str]], sub: str) -> str | None:
    items = group.get(sub)
    return items[0] if items else None


def _plan_one(index: int, group: dict[str, list[str]], container_name: str,
              default_bridge: str) -> NetPlan:
    def key(sub: str) -> str:
        return f"lxc.net.{index}.{sub}"

    raw_type = _single(group, "type")
    if raw_type is None:
        raise ConfigError(f"{key('type')}: missing (every lxc.net.{index}.* entry needs a type)")
    if raw_type == "ipvlan":
        raise ConfigError(f"{key('type')}: 'ipvlan' is not supported by pyl")
    try:
        net_type = NetType(raw_type)
    except ValueError:
        raise ConfigError(f"{key('type')}: unknown network type {raw_type!r} "
                          f"(expected one of {', '.join(t.value for t in NetType)})") from None

    for sub, wanted in _ONLY_FOR.items():
        if sub in group and net_type is not wanted:
            raise ConfigError(f"{key(sub)}: only valid for type {wanted.value}, not {net_type.value}")
    if net_type in (NetType.EMPTY, NetType.NONE):
        extra = sorted(set(group) - {"type", "flags"})
        if extra:
            raise ConfigError(f"{key(extra[0])}: meaningless for type {net_type.value}")
        return NetPlan(index=index, type=net_type, container_name=container_name)

    name = _single(group, "name")
    if name is not None:
        _check_ifname(key("name"), name)
        if name == "lo":
            raise ConfigError(f"{key('name')}: 'lo' is the container's loopback device")

    link = _single(group, "link") or None
    if link is not None:
        _check_ifname(key("link"), link)
    if net_type in (NetType.MACVLAN, NetType.VLAN, NetType.PHYS) and link is None:
        raise ConfigError(f"{key('link')}: required for type {net_type.value}")

    flags = _single(group, "flags")
    if flags not in (None, "", "up"):
        raise ConfigError(f"{key('flags')}: {flags!r} is not a valid flag (only 'up')")
    up = flags == "up"

    hwaddr = _single(group, "hwaddr") or None
    if hwaddr is not None:
        hwaddr = _check_mac(key("hwaddr"), hwaddr)

    mtu: int | None = None
    raw_mtu = _single(group, "mtu")
    if raw_mtu:
        if not raw_mtu.isdigit() or not 68 <= int(raw_mtu) <= 65535:
            raise ConfigError(f"{key('mtu')}: {raw_mtu!r} is not an MTU (68..65535)")
        mtu = int(raw_mtu)

    ipv4, ipv4_auto = _parse_ipv4(key("ipv4.address"), group.get("ipv4.address", []))
    ipv6 = tuple(_parse_ipv6(key("ipv6.address"), v) for v in group.get("ipv6.address", []))
    ipv4_gw = _parse_gateway(key("ipv4.gateway"), _single(group, "ipv4.gateway"), 4)
    ipv6_gw = _parse_gateway(key("ipv6.gateway"), _single(group, "ipv6.gateway"), 6)

    bridged = net_type is NetType.VETH and link is not None
    if ipv4_auto and not bridged:
        raise ConfigError(f"{key('ipv4.address')}: 'auto' needs a veth attached to a bridge (lxc.net.{index}.link)")
    for gw_key, gw in ((key("ipv4.gateway"), ipv4_gw), (key("ipv6.gateway"), ipv6_gw)):
        if gw is Gateway.AUTO and not bridged:
            raise ConfigError(f"{gw_key}: 'auto' needs a veth attached to a bridge (lxc.net.{index}.link)")
        if gw is not None and not up:
            # As LXC: a route cannot be added through a device that stays down.
            raise ConfigError(f"{gw_key}: a gateway needs lxc.net.{index}.flags = up")
    if ipv6_gw is Gateway.AUTO:
        raise ConfigError(f"{key('ipv6.gateway')}: 'auto' is not supported for IPv6 by pyl")

    veth_pair = _single(group, "veth.pair") or None
    if veth_pair is not None:
        _check_ifname(key("veth.pair"), veth_pair)
    veth_mode = _single(group, "veth.mode")
    if veth_mode not in (None, "", "bridge"):
        raise ConfigError(f"{key('veth.mode')}: {veth_mode!r} is not supported by pyl (only 'bridge')")
    v4_routes = tuple(_parse_route(key("veth.ipv4.route"), v, 4) for v in group.get("veth.ipv4.route", []))
    v6_routes = tuple(_parse_route(key("veth.ipv6.route"), v, 6) for v in group.get("veth.ipv6.route", []))

    macvlan_mode: MacvlanMode | None = None
    if net_type is NetType.MACVLAN:
        raw_mode = _single(group, "macvlan.mode") or "private"
        try:
            macvlan_mode = MacvlanMode(raw_mode)
        except ValueError:
            raise ConfigError(f"{key('macvlan.mode')}: {raw_mode!r} is not one of "
                              f"{', '.join(m.value for m in MacvlanMode)}") from None

    vlan_id: int | None = None
    if net_type is NetType.VLAN:
        raw_id = _single(group, "vlan.id")
        if not raw_id:
            raise ConfigError(f"{key('vlan.id')}: required for type vlan")
        if not raw_id.isdigit() or not 0 <= int(raw_id) <= 4094:
            raise ConfigError(f"{key('vlan.id')}: {raw_id!r} is not a VLAN id (0..4094)")
        vlan_id = int(raw_id)

    return NetPlan(
        index=index, type=net_type, name=name, link=link,
        link_is_default_bridge=bridged and link == default_bridge,
        hwaddr=hwaddr, mtu=mtu, up=up, ipv4=ipv4, ipv4_auto=ipv4_auto, ipv4_gateway=ipv4_gw,
        ipv6=ipv6, ipv6_gateway=ipv6_gw, veth_pair=veth_pair, veth_ipv4_routes=v4_routes,
        veth_ipv6_routes=v6_routes, macvlan_mode=macvlan_mode, vlan_id=vlan_id,
        container_name=container_name,
    )


def _check_ifname(key: str, name: str) -> None:
    if len(name.encode()) > IFNAMSIZ:
        raise ConfigError(f"{key}: {name!r} is longer than {IFNAMSIZ} characters")
    if name in (".", "..") or any(c in name for c in "/: \t\n") or not name.isprintable():
        raise ConfigError(f"{key}: {name!r} is not a valid interface name")


def _check_mac(key: str, mac: str) -> str:
    if "x" in mac.lower():
        raise ConfigError(f"{key}: {mac!r} still has 'x' placeholders (they are expanded when the config is read)")
    if not _MAC.match(mac):
        raise ConfigError(f"{key}: {mac!r} is not a MAC address (aa:bb:cc:dd:ee:ff)")
    if int(mac[:2], 16) & 1:
        raise ConfigError(f"{key}: {mac!r} is a multicast address (first octet must be even)")
    return mac.lower()


def _classful_prefix(addr: IPv4Address) -> int:
    # LXC's default when ipv4.address has no /prefix: the old class A/B/C mask.
    first = int(addr) >> 24
    return 8 if first < 128 else 16 if first < 192 else 24


def _parse_ipv4(key: str, items: list[str]) -> tuple[tuple[IPv4Setting, ...], bool]:
    if items == ["auto"]:
        return (), True
    settings = []
    for item in items:
        if item == "auto":
            raise ConfigError(f"{key}: 'auto' cannot be combined with static addresses")
        parts = item.split()
        if len(parts) > 2:
            raise ConfigError(f"{key}: {item!r} is not 'ADDRESS/PREFIX [BROADCAST]'")
        try:
            addr_text = parts[0]
            if "/" not in addr_text:
                addr_text += f"/{_classful_prefix(IPv4Address(addr_text))}"
            iface = IPv4Interface(addr_text)
            bcast = IPv4Address(parts[1]) if len(parts) == 2 else None
        except ValueError:
            raise ConfigError(f"{key}: {item!r} is not 'ADDRESS/PREFIX [BROADCAST]'") from None
        settings.append(IPv4Setting.of(iface, bcast))
    return tuple(settings), False


def _parse_ipv6(key: str, item: str) -> IPv6Interface:
    if item == "auto":
        raise ConfigError(f"{key}: 'auto' is not supported for IPv6 by pyl")
    try:
        text = item if "/" in item else f"{item}/64"
        return IPv6Interface(text)
    except ValueError:
        raise ConfigError(f"{key}: {item!r} is not an IPv6 address (ADDRESS/PREFIX)") from None


def _parse_gateway(key: str, raw: str | None, version: int) -> IPv4Address | IPv6Address | Gateway | None:
    if not raw:
        return None
    if raw in ("auto", "dev"):
        return Gateway(raw)
    try:
        addr = ipaddress.ip_address(raw)
    except ValueError:
        addr = None
    if addr is None or addr.version != version:
        raise ConfigError(f"{key}: {raw!r} is not an IPv{version} address, 'auto' or 'dev'")
    return addr


def _parse_route(key: str, raw: str, version: int) -> IPv4Network | IPv6Network:
    try:
        net = ipaddress.ip_network(raw, strict=True)
    except ValueError:
        net = None
    if net is None or net.version != version:
        raise ConfigError(f"{key}: {raw!r} is not an IPv{version} network (ADDRESS/PREFIX, host bits zero)")
    return net


def _random_suffix(n: int) -> str:
    from lxctools.names import random_text
    return random_text(n, "abcdefghijklmnopqrstuvwxyz0123456789")


def veth_host_name(container_name: str, suffix: Callable[[int], str]) -> str:
    """``pyl`` + up to 6 name characters + 6 random ones: recognisable in ``ip link``, <= 15 chars."""
    nameish = re.sub(r"[^a-zA-Z0-9]", "", container_name)[:6]
    return f"pyl{nameish}{suffix(6)}"


def _assign_names(plans: list[NetPlan], container_name: str, suffix: Callable[[int], str]) -> list[NetPlan]:
    taken = {p.name for p in plans if p.name}
    hosts = {p.veth_pair for p in plans if p.veth_pair}
    out: list[NetPlan] = []
    counter = 0
    for plan in plans:
        if not plan.in_container:
            out.append(plan)
            continue
        changes: dict[str, object] = {}
        if plan.name is None:
            while f"eth{counter}" in taken:
                counter += 1
            changes["name"] = f"eth{counter}"
            taken.add(f"eth{counter}")
        if plan.type is NetType.VETH and plan.veth_pair is None:
            host = veth_host_name(container_name, suffix)
            for _ in range(20):
                if host not in hosts:
                    break
                host = veth_host_name(container_name, suffix)
            else:  # a fixed suffix (tests) keeps colliding: make it unique with the index
                host = f"{host[:IFNAMSIZ - len(str(plan.index))]}{plan.index}"
            hosts.add(host)
            changes["veth_pair"] = host
        out.append(replace(plan, **changes) if changes else plan)
    return out


def _check_whole(plans: list[NetPlan]) -> None:
    seen: dict[str, int] = {}
    pairs: dict[str, int] = {}
    for plan in plans:
        if plan.type is NetType.NONE and len(plans) > 1:
            raise ConfigError(f"{plan.key('type')}: 'none' (share the host network) cannot be combined "
                              f"with other lxc.net entries")
        if plan.name:
            if plan.name in seen:
                raise ConfigError(f"{plan.key('name')}: {plan.name!r} already used by lxc.net.{seen[plan.name]}")
            seen[plan.name] = plan.index
        if plan.veth_pair:
            if plan.veth_pair in pairs:
                raise ConfigError(f"{plan.key('veth.pair')}: {plan.veth_pair!r} already used by "
                                  f"lxc.net.{pairs[plan.veth_pair]}")
            pairs[plan.veth_pair] = plan.index
        if plan.type is NetType.PHYS:
            for other in plans:
                if other is not plan and other.type is NetType.PHYS and other.link == plan.link:
                    raise ConfigError(f"{plan.key('link')}: {plan.link!r} moved into the container twice")
