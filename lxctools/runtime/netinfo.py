"""Read-only view of a running container's interfaces for pyl-info / pyl-ls: names, MACs,
addresses, traffic, through one rtnetlink dump of links and one of addresses.

Why not runtime.net (pyroute2): answering `pyl-ls --fancy` for 50 containers must not cost a
pyroute2 import or a fork per container. The supervisor opens one NETLINK_ROUTE socket inside
each container's network namespace (setns there and back: a netlink socket stays bound to the
namespace it was created in) and keeps it for the container's life, so a query is two
request/response round trips. Nothing here changes anything; all configuration stays in
runtime.net.
"""

from __future__ import annotations

import os
import socket
import struct

from lxctools.errors import KernelError
from lxctools.kernel import ns

NETLINK_ROUTE = 0
RTM_GETLINK, RTM_NEWLINK, RTM_GETADDR, RTM_NEWADDR = 18, 16, 22, 20
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
NLMSG_DONE, NLMSG_ERROR = 3, 2
IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_STATS64 = 1, 3, 4, 23
IFA_ADDRESS, IFA_LOCAL = 1, 2
LOOPBACK_IFINDEX = 1  # the kernel creates lo first in every network namespace
RT_SCOPE_LINK = 253

_NLMSG = struct.Struct("=IHHII")
_RTATTR = struct.Struct("=HH")
_IFINFO = struct.Struct("=BxHiII")
_IFADDR = struct.Struct("=BBBBI")


def open_socket_in(pid: int) -> socket.socket:
    """A NETLINK_ROUTE socket living in the network namespace of pid."""
    own = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        target = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        os.close(own)
        raise KernelError(f"process {pid} is gone", 3) from None
    try:
        ns.setns(target, ns.CLONE_NEWNET)
        try:
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_ROUTE)
        finally:
            ns.setns(own, ns.CLONE_NEWNET)
    finally:
        os.close(target)
        os.close(own)
    sock.bind((0, 0))
    return sock


def _attrs(data: bytes, offset: int, end: int) -> dict[int, bytes]:
    found: dict[int, bytes] = {}
    while offset + 4 <= end:
        length, kind = _RTATTR.unpack_from(data, offset)
        if length < 4:
            break
        found[kind & 0x3FFF] = data[offset + 4:offset + length]
        offset += (length + 3) & ~3
    return found


def _dump(sock: socket.socket, kind: int, body: bytes, seq: int) -> list[tuple[int, bytes, int]]:
    header = _NLMSG.pack(_NLMSG.size + len(body), kind, NLM_F_REQUEST | NLM_F_DUMP, seq, 0)
    sock.send(header + body)
    messages = []
    while True:
        data = sock.recv(65536)
        offset = 0
        while offset + _NLMSG.size <= len(data):
            length, mtype, _flags, mseq, _pid = _NLMSG.unpack_from(data, offset)
            if length < _NLMSG.size:
                return messages
            if mseq == seq:
                if mtype == NLMSG_DONE:
                    return messages
                if mtype == NLMSG_ERROR:
                    (err,) = struct.unpack_from("=i", data, offset + _NLMSG.size)
                    if err:
                        raise KernelError(f"netlink dump: {os.strerror(-err)}", -err)
                    return messages
                messages.append((mtype, data, offset))
            offset += (length + 3) & ~3


def _mac(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw)


def interfaces(sock: socket.socket) -> list[dict]:
    """[{name, mac, mtu, ipv4: ["a.b.c.d/n"], ipv6: [...], rx_bytes, tx_bytes}] (no link-local)."""
    links: dict[int, dict] = {}
    for _kind, data, offset in _dump(sock, RTM_GETLINK, _IFINFO.pack(socket.AF_UNSPEC, 0, 0, 0, 0), 1):
        length = _NLMSG.unpack_from(data, offset)[0]
        start = offset + _NLMSG.size
        _family, _type, index, _flags, _change = _IFINFO.unpack_from(data, start)
        attrs = _attrs(data, start + _IFINFO.size, offset + length)
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
    for index, version, address, prefix in _addresses(sock, seq=2):
        link = links.get(index)
        if link is not None:
            link[version].append(f"{address}/{prefix}")
    return sorted(links.values(), key=lambda link: link["name"])


def addresses(sock: socket.socket) -> dict[str, list[str]]:
    """{"ipv4": [...], "ipv6": [...]} of every interface but the loopback (ifindex 1 in every
    network namespace), without link-local IPv6, as pyl-ls shows them from interfaces(): one
    dump instead of two, for the IPV4/IPV6 columns."""
    found: dict[str, list[str]] = {"ipv4": [], "ipv6": []}
    for index, version, address, _prefix in _addresses(sock, seq=3):
        if index != LOOPBACK_IFINDEX:
            found[version].append(address)
    return found


def _addresses(sock: socket.socket, seq: int):
    """(ifindex, "ipv4" or "ipv6", address, prefix length) of every address, link-local IPv6 left out."""
    for _kind, data, offset in _dump(sock, RTM_GETADDR, _IFADDR.pack(socket.AF_UNSPEC, 0, 0, 0, 0), seq):
        length = _NLMSG.unpack_from(data, offset)[0]
        start = offset + _NLMSG.size
        family, prefix, _flags, scope, index = _IFADDR.unpack_from(data, start)
        attrs = _attrs(data, start + _IFADDR.size, offset + length)
        raw = attrs.get(IFA_LOCAL) or attrs.get(IFA_ADDRESS)
        if raw is None:
            continue
        if family == socket.AF_INET:
            yield index, "ipv4", socket.inet_ntop(socket.AF_INET, raw), prefix
        elif family == socket.AF_INET6 and scope != RT_SCOPE_LINK:
            yield index, "ipv6", socket.inet_ntop(socket.AF_INET6, raw), prefix
