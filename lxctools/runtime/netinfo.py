"""Read-only view of a running container's interfaces for pyl-info / pyl-ls: names, MACs,
addresses, traffic, through one rtnetlink dump of links and one of addresses.

The transport is kernel.netlink's; the few fields are packed and parsed here with struct.
Why not runtime.net (pyroute2): answering `pyl-ls --fancy` for 50 containers must not cost a
pyroute2 import or a fork per container. The supervisor opens one NETLINK_ROUTE socket inside
each container's network namespace (setns there and back: a netlink socket stays bound to the
namespace it was created in) and keeps it for the container's life, so a query is two
request/response round trips. Nothing here changes anything; all configuration stays in
runtime.net.
"""

from __future__ import annotations

import socket
import struct

from lxctools.errors import KernelError
from lxctools.kernel import netlink

RTM_GETLINK, RTM_GETADDR = 18, 22
IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_STATS64 = 1, 3, 4, 23
IFA_ADDRESS, IFA_LOCAL = 1, 2
LOOPBACK_IFINDEX = 1  # the kernel creates lo first in every network namespace
RT_SCOPE_LINK = 253

_NLMSG = netlink.HEADER
_RTATTR = struct.Struct("=HH")
_IFINFO = struct.Struct("=BxHiII")
_IFADDR = struct.Struct("=BBBBI")


open_socket_in = netlink.route_socket_in  # the supervisor keeps one per running container


def _attrs(data: bytes, offset: int, end: int) -> dict[int, bytes]:
    found: dict[int, bytes] = {}
    while offset + 4 <= end:
        length, kind = _RTATTR.unpack_from(data, offset)
        if length < 4:
            break
        found[kind & 0x3FFF] = data[offset + 4:offset + length]
        offset += (length + 3) & ~3
    return found


def _dump(sock: socket.socket, kind: int, body: bytes) -> list[bytes]:
    """Every message of a dump of KIND, whole (header included)."""
    try:
        return netlink.query(sock, netlink.message(kind, netlink.NLM_F_DUMP, body))
    except netlink.NetlinkError as exc:
        raise KernelError(f"netlink dump: {exc.strerror}", exc.errno) from None


def _mac(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw)


def interfaces(sock: socket.socket) -> list[dict]:
    """[{name, mac, mtu, ipv4: ["a.b.c.d/n"], ipv6: [...], rx_bytes, tx_bytes}] (no link-local)."""
    links: dict[int, dict] = {}
    for data in _dump(sock, RTM_GETLINK, _IFINFO.pack(socket.AF_UNSPEC, 0, 0, 0, 0)):
        start = _NLMSG.size
        _family, _type, index, _flags, _change = _IFINFO.unpack_from(data, start)
        attrs = _attrs(data, start + _IFINFO.size, len(data))
        rx = tx = 0
        stats = attrs.get(IFLA_STATS64)
        if stats and len(stats) >= 32:
            _rxp, _txp, rx, tx = struct.unpack_from("=QQQQ", stats)
        links[index] = {
            "name": attrs.get(IFLA_IFNAME, b"").rstrip(b"\0").decode(errors="replace"),
            "mac": _mac(attrs.get(IFLA_ADDRESS, b"")),
            "mtu": struct.unpack("=I", attrs[IFLA_MTU])[0] if IFLA_MTU in attrs else 0,
            "ipv4": [], "ipv6": [], "rx_bytes": rx, "tx_bytes": tx,
        }
    for index, version, address, prefix in _addresses(sock):
        link = links.get(index)
        if link is not None:
            link[version].append(f"{address}/{prefix}")
    return sorted(links.values(), key=lambda link: link["name"])


def addresses(sock: socket.socket) -> dict[str, list[str]]:
    """{"ipv4": [...], "ipv6": [...]} of every interface but the loopback (ifindex 1 in every
    network namespace), without link-local IPv6, as pyl-ls shows them from interfaces(): one
    dump instead of two, for the IPV4/IPV6 columns."""
    found: dict[str, list[str]] = {"ipv4": [], "ipv6": []}
    for index, version, address, _prefix in _addresses(sock):
        if index != LOOPBACK_IFINDEX:
            found[version].append(address)
    return found


def query(sock: socket.socket, what: str) -> list[dict] | dict[str, list[str]]:
    """interfaces(SOCK), or addresses(SOCK) when WHAT is "addresses" (pyl-ls's IPV4/IPV6 columns alone)."""
    return addresses(sock) if what == "addresses" else interfaces(sock)


def _addresses(sock: socket.socket):
    """(ifindex, "ipv4" or "ipv6", address, prefix length) of every address, link-local IPv6 left out."""
    for data in _dump(sock, RTM_GETADDR, _IFADDR.pack(socket.AF_UNSPEC, 0, 0, 0, 0)):
        start = _NLMSG.size
        family, prefix, _flags, scope, index = _IFADDR.unpack_from(data, start)
        attrs = _attrs(data, start + _IFADDR.size, len(data))
        raw = attrs.get(IFA_LOCAL) or attrs.get(IFA_ADDRESS)
        if raw is None:
            continue
        if family == socket.AF_INET:
            yield index, "ipv4", socket.inet_ntop(socket.AF_INET, raw), prefix
        elif family == socket.AF_INET6 and scope != RT_SCOPE_LINK:
            yield index, "ipv6", socket.inet_ntop(socket.AF_INET6, raw), prefix
