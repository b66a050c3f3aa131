"""IPv4 address allocation for ``lxc.net.N.ipv4.address = auto`` on a bridge subnet.

Owns the lease file ``LXCPATH/.pyl-ipam/<subnet>.json`` and its flock. A lease maps a container
name to one address and outlives the container's run, so a container gets the same address
back on restart unless someone else took it meanwhile. Whether a lease is in use is the host
table's to say (below), not the lease file's: the lease file is rewritten only when a container
gets a new address, so a restart with its old one writes nothing to the lxcpath (a rename on
ext4 there cost ~1 ms of every start and stop), and a host that rebooted with containers
running finds no lease marked in use by a container that no longer runs. The upper half of the
bridge's host range is pyl's static pool; the lower half belongs to dnsmasq's DHCP range
(``dhcp_range``), so a static auto address never collides with a DHCP lease.

A bridge is shared by every lxcpath of the host, so the addresses in use are also kept host-wide:
``RUNDIR/net/ipam/<subnet>.json`` (address -> [lxcpath, name], the active leases only, gone with
a reboot as the containers are). An address another lxcpath's running container holds is never
handed out. Static addresses on the subnet are entered there too (``claim``, [lxcpath, name,
"static"]), so no ``auto`` address lands on a running container's static one, and two running
containers never hold one address. Lock order, everywhere: the host table, then an lxcpath's
lease file.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from collections.abc import Callable, Iterator
from ipaddress import IPv4Address, IPv4Interface
from pathlib import Path

from lxctools.errors import ConfigError, PylError, StartError

LEASE_DIR = ".pyl-ipam"


def _hosts_range(cidr: IPv4Interface) -> tuple[int, int]:
    net = cidr.network
    if net.prefixlen > 29:
        raise ConfigError(f"bridge subnet {net} is too small for automatic addresses (need /29 or larger)")
    return int(net.network_address) + 1, int(net.broadcast_address) - 1


def pool_range(cidr: IPv4Interface) -> tuple[IPv4Address, IPv4Address]:
    """First and last address ipam hands out: the upper half of the host range."""
    first, last = _hosts_range(cidr)
    return IPv4Address((first + last) // 2 + 1), IPv4Address(last)


def dhcp_range(cidr: IPv4Interface) -> tuple[IPv4Address, IPv4Address]:
    """The lower half of the host range, left to dnsmasq (bridge.py); skips the bridge's own address."""
    first, last = _hosts_range(cidr)
    middle = (first + last) // 2
    if int(cidr.ip) == first:
        first += 1
    return IPv4Address(first), IPv4Address(middle)


def lease_path(lxcpath: Path, cidr: IPv4Interface) -> Path:
    net = cidr.network
    return Path(lxcpath) / LEASE_DIR / f"{net.network_address}_{net.prefixlen}.json"


def host_table_path(cidr: IPv4Interface) -> Path:
    """The host-wide table of addresses in use on CIDR's subnet, beside the bridges' own state
    (pyl-net's run dir: PYL_RUNDIR, or /run/pyl for root, + net)."""
    from lxctools.paths import default_rundir
    net = cidr.network
    return Path(default_rundir()) / "net" / "ipam" / f"{net.network_address}_{net.prefixlen}.json"


def _owner(lxcpath: Path, container_name: str) -> list[str]:
    return [os.path.abspath(str(lxcpath)), container_name]


def _lease_entry_error(name: str, entry: object) -> str | None:
    """What is wrong with one entry of an lxcpath's lease file (name -> {"address": ...})."""
    address = entry.get("address") if isinstance(entry, dict) else None
    if not isinstance(address, str) or not _is_ipv4(address):
        return f"the lease of '{name}' has no IPv4 \"address\""
    return None


def _owner_entry_error(address: str, owner: object) -> str | None:
    """What is wrong with one entry of the host table (address -> [lxcpath, name(, "static")])."""
    if not _is_ipv4(address):
        return f"'{address}' is not an IPv4 address"
    if not (isinstance(owner, list) and 2 <= len(owner) <= 3 and all(isinstance(o, str) for o in owner)):
        return f"the owner of {address} is not [lxcpath, name] or [lxcpath, name, \"static\"]"
    return None


def _is_ipv4(text: str) -> bool:
    try:
        IPv4Address(text)
    except ValueError:
        return False
    return True


@contextlib.contextmanager
def _locked(path: Path, entry_error: Callable[[str, object], str | None]) -> Iterator[dict]:
    """Hold the file's flock, hand out its contents, write them back atomically. A file whose
    shape is wrong (edited by hand, or by something else) is refused with the entry named,
    not half-read: each entry is checked by ENTRY_ERROR(key, value)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path.with_suffix(".lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            leases = json.loads(path.read_text())
        except FileNotFoundError:
            leases = {}
        except ValueError as exc:
            raise PylError(f"{path}: corrupt lease file ({exc})") from exc
        problem = "not a JSON object" if not isinstance(leases, dict) else next(
            filter(None, (entry_error(k, v) for k, v in leases.items())), None)
        if problem:
            raise PylError(f"{path}: corrupt lease file ({problem})",
                           hint="mend or remove the entry; a removed lease only loses an address preference")
        before = json.dumps(leases, sort_keys=True)
        yield leases
        if json.dumps(leases, sort_keys=True) != before:
            tmp = path.with_name(f".{path.name}.{os.getpid()}")
            tmp.write_text(json.dumps(leases, indent=1, sort_keys=True) + "\n")
            os.replace(tmp, path)
    finally:
        os.close(fd)  # closing drops the flock


def allocate(lxcpath: Path, bridge_cidr: IPv4Interface | str, container_name: str) -> IPv4Interface:
    """Return ``container_name``'s address on the bridge subnet (same prefix), leasing it.

    Preference: the container's previous address if not actively held by another container, then
    the address its name hashes to, then the first address never leased, then any inactive one.
    """
    cidr = IPv4Interface(bridge_cidr)
    first, last = (int(a) for a in pool_range(cidr))
    size = last - first + 1
    me = _owner(lxcpath, container_name)
    with (_locked(host_table_path(cidr), _owner_entry_error) as in_use,
          _locked(lease_path(lxcpath, cidr), _lease_entry_error) as leases):
        # Every running container's address is in the host table, whatever its lxcpath; and so
        # are this container's own static ones (owner me + "static").
        elsewhere = {address for address, owner in in_use.items() if owner != me}
        known = {v["address"] for v in leases.values()}
        blocked = elsewhere | {str(cidr.ip)}
        mine = leases.get(container_name, {}).get("address")
        choice: str | None = mine if mine and mine not in blocked and _in_pool(mine, first, last) else None
        if choice is None:
            start = int.from_bytes(hashlib.sha256(container_name.encode()).digest()[:4], "big") % size
            ring = [str(IPv4Address(first + (start + i) % size)) for i in range(size)]
            choice = next((a for a in ring if a not in blocked and a not in known), None)
            if choice is None:
                choice = next((a for a in ring if a not in blocked), None)
        if choice is None:
            raise PylError(f"no free address left in {cidr.network} for {container_name}",
                           hint=f"pool {IPv4Address(first)}-{IPv4Address(last)} is fully leased")
        # Another container's lease of this address (not running: the address was free) is stale now.
        for name in [k for k, v in leases.items() if v["address"] == choice and k != container_name]:
            del leases[name]
        leases[container_name] = {"address": choice}  # unchanged on a restart: no write
        _drop_owner(in_use, me, keep_static=True)
        in_use[choice] = me
    return IPv4Interface(f"{choice}/{cidr.network.prefixlen}")


def claim(lxcpath: Path, bridge_cidr: IPv4Interface | str, container_name: str, address: IPv4Interface,
          is_running: Callable[[str, str], bool]) -> None:
    """Enter a static ADDRESS on the bridge's subnet in the host table, for as long as the
    container runs (``release`` drops it); refuse the bridge's own address, and one that another
    container holds while IS_RUNNING(lxcpath, name) says it runs (an entry a crash left is taken over)."""
    cidr = IPv4Interface(bridge_cidr)
    ip = str(address.ip)
    if address.ip == cidr.ip:
        raise ConfigError(f"{ip} is the bridge's own address (the containers' gateway)")
    me = _owner(lxcpath, container_name)
    with _locked(host_table_path(cidr), _owner_entry_error) as in_use:
        holder = in_use.get(ip)
        if holder and holder[:2] != me and is_running(holder[0], holder[1]):
            where = "" if holder[0] == me[0] else f" of {holder[0]}"
            raise StartError(f"{ip} is in use by container {holder[1]}{where}",
                             hint="each container on a bridge needs its own address")
        in_use[ip] = me + ["static"]


def _drop_owner(in_use: dict, owner: list[str], *, keep_static: bool = False) -> None:
    """Forget OWNER's addresses: all of them (the container stopped), or its previous auto one."""
    for address in [a for a, o in in_use.items() if o[:2] == owner and not (keep_static and o[2:])]:
        del in_use[address]


def release(lxcpath: Path, bridge_cidr: IPv4Interface | str, container_name: str, *, forget: bool = False) -> None:
    """The container stopped: its addresses leave the host table, its lease stays (the
    preference for its next start); ``forget`` drops the lease too (destroy)."""
    cidr = IPv4Interface(bridge_cidr)
    path, table = lease_path(lxcpath, cidr), host_table_path(cidr)
    if not path.exists() and not table.exists():
        return
    with contextlib.ExitStack() as stack:
        if table.exists():
            _drop_owner(stack.enter_context(_locked(table, _owner_entry_error)), _owner(lxcpath, container_name))
        if forget and path.exists():
            stack.enter_context(_locked(path, _lease_entry_error)).pop(container_name, None)


def leases(lxcpath: Path, bridge_cidr: IPv4Interface | str) -> dict[str, dict[str, object]]:
    """Current lease table (name -> {address, active}), for status output and tests; active:
    the host table has the address as this container's."""
    cidr = IPv4Interface(bridge_cidr)
    path, table = lease_path(lxcpath, cidr), host_table_path(cidr)
    if not path.exists():
        return {}
    with contextlib.ExitStack() as stack:
        in_use = stack.enter_context(_locked(table, _owner_entry_error)) if table.exists() else {}
        found = stack.enter_context(_locked(path, _lease_entry_error))
        return {name: {"address": lease["address"],
                       "active": in_use.get(lease["address"], [])[:2] == _owner(lxcpath, name)}
                for name, lease in found.items()}


def _in_pool(address: str, first: int, last: int) -> bool:
    return first <= int(IPv4Address(address)) <= last
