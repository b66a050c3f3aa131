"""pyl's default bridge service (pyl-net, the counterpart of LXC's lxc-net).

Owns: the bridge (default ``pylbr0``, 10.0.7.1/24 so it never collides with lxcbr0's 10.0.3.0/24),
IPv4 forwarding, a masquerading nftables table of its own (``ip pyl``), and a dnsmasq bound to the
bridge alone, serving DHCP from the lower half of the subnet (ipam hands out the upper half).
State lives in RUNDIR: ``network_up`` (JSON: what start did, so stop undoes exactly that),
``dnsmasq.pid``, ``dnsmasq.leases``. Netlink work goes through lxctools.runtime.net (the only
pyroute2 user); nftables through ``nft -f -``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from ipaddress import IPv4Interface
from pathlib import Path
from typing import Any

from lxctools.errors import ConfigError, KernelError, NotFoundError, PylError, WrongStateError
from lxctools.runtime import ipam

DEFAULT_CONFIG_FILE = Path("/etc/default/pyl-net")
DNSMASQ = "/usr/sbin/dnsmasq"
NFT = "/usr/sbin/nft"
IP_FORWARD = Path("/proc/sys/net/ipv4/ip_forward")


@dataclass(frozen=True)
class BridgeConfig:
    """pyl-net settings; ``/etc/default/pyl-net`` overrides them (PYL_BRIDGE=, PYL_ADDR=, ...)."""

    name: str = "pylbr0"
    address: str = "10.0.7.1/24"
    dhcp: bool = True
    dns: bool = True
    nat: bool = True
    nft_table: str = "pyl"
    dnsmasq: str = DNSMASQ

    @property
    def cidr(self) -> IPv4Interface:
        return IPv4Interface(self.address)

    def validate(self) -> BridgeConfig:
        try:
            cidr = self.cidr
        except ValueError:
            raise ConfigError(f"PYL_ADDR: {self.address!r} is not ADDRESS/PREFIX") from None
        if cidr.ip in (cidr.network.network_address, cidr.network.broadcast_address):
            raise ConfigError(f"PYL_ADDR: {self.address!r} is the network or broadcast address")
        # The kernel's rule for a link name (dev_valid_name): a NUL or a space from a mangled
        # settings file would otherwise surface as a netlink or exec failure, far from its line.
        if (len(self.name) > 15 or self.name in ("", ".", "..")
                or any(c in "/:" or c.isspace() or not c.isprintable() for c in self.name)):
            raise ConfigError(f"PYL_BRIDGE: {self.name!r} is not a valid interface name")
        if not self.nft_table.replace("_", "").isalnum():
            raise ConfigError(f"PYL_NFT_TABLE: {self.nft_table!r} is not a valid nftables name")
        return self


_FILE_KEYS = {"PYL_BRIDGE": "name", "PYL_ADDR": "address", "PYL_DHCP": "dhcp", "PYL_DNS": "dns",
              "PYL_NAT": "nat", "PYL_NFT_TABLE": "nft_table"}


def load_config(path: Path = DEFAULT_CONFIG_FILE) -> BridgeConfig:
    """Read KEY="value" lines (as /etc/default/lxc-net); a missing file means the defaults."""
    values: dict[str, Any] = {}
    try:
        text = path.read_bytes().decode()
    except FileNotFoundError:
        return BridgeConfig()
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder, not a settings file") from None
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not UTF-8 text (byte {err.start})") from None
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        key, value = key.strip(), value.strip().strip("\"'")
        if not sep or key not in _FILE_KEYS:
            raise ConfigError(f"{path}:{number}: unknown setting {key!r}")
        field_name = _FILE_KEYS[key]
        if field_name in ("dhcp", "dns", "nat"):
            values[field_name] = value.lower() in ("1", "true", "yes")
        else:
            values[field_name] = value
    return BridgeConfig(**values).validate()


# ------------------------------------------------------------------------------------- commands --

_RECORD_FLAGS = ("created_bridge", "nft", "dnsmasq")


def _read_record(marker: Path) -> dict[str, Any] | None:
    """What start did (the network_up record), or None if there is none. A record that cannot
    be read is refused, naming it: stop undoes exactly what it says (whether the bridge is pyl's
    to delete), so a guess could delete the host's own bridge or leave pyl's behind."""
    try:
        done = json.loads(marker.read_bytes())
    except FileNotFoundError:
        return None
    except (IsADirectoryError, ValueError, RecursionError) as err:
        problem = "a folder" if isinstance(err, OSError) else "not JSON"
        raise _corrupt_record(marker, problem) from None
    cfg = done.get("config") if isinstance(done, dict) else None
    fields = {f: type(v) for f, v in asdict(BridgeConfig()).items()}
    if not (isinstance(cfg, dict) and set(cfg) <= set(fields) and "name" in cfg
            and all(type(v) is fields[k] for k, v in cfg.items())
            and all(isinstance(done.get(f, False), bool) for f in _RECORD_FLAGS)
            and isinstance(done.get("ip_forward_was"), (str, type(None)))):
        raise _corrupt_record(marker, "not the record pyl-net start writes")
    try:
        BridgeConfig(**cfg).validate()
    except ConfigError as err:
        raise _corrupt_record(marker, err.message) from None
    return done


def _corrupt_record(marker: Path, problem: str) -> PylError:
    return PylError(f"{marker}: corrupt pyl-net record ({problem})",
                    hint="remove it: pyl-net stop --force then finds and removes what is left by name")


def default_net_rundir() -> Path:
    """pyl's run dir (PYL_RUNDIR, /run/pyl for root) + ``net``; pyl-net uses the same place."""
    from lxctools.paths import default_rundir
    return Path(default_rundir(), "net")


def start(rundir: Path, cfg: BridgeConfig | None = None) -> dict[str, Any]:
    """Bring the bridge service up; a no-op (returning status) if it is already up."""
    cfg = (cfg or load_config()).validate()
    rundir = Path(rundir)
    marker = rundir / "network_up"
    rundir.mkdir(mode=0o755, parents=True, exist_ok=True)
    with _service_lock(rundir):
        previous = _read_record(marker)
        if previous is not None:
            if _still_up(rundir, previous):
                return status(rundir)
            # Recorded as up, but its bridge was deleted or its dnsmasq died (by hand, or by a
            # pyl-net of another run dir): brought up again over what is left (the bridge and
            # the ports on it stay), or every container on the bridge would fail to start
            # until someone ran pyl-net stop.
        elsewhere = _dnsmasq_serving(cfg.name, rundir)[1]
        if elsewhere is not None:  # checked before anything is made: its undo would take theirs
            raise WrongStateError(f"{cfg.name} is served by the pyl-net of run dir {elsewhere}",
                                  hint="use that run dir (PYL_RUNDIR), or stop pyl-net there first")
        _start_locked(rundir, cfg, marker, previous)
    return status(rundir)


def _still_up(rundir: Path, done: dict[str, Any]) -> bool:
    from lxctools.runtime.devices import is_host_interface
    return is_host_interface(done["config"]["name"]) and (not done.get("dnsmasq") or _dnsmasq_pid(rundir) is not None)


@contextlib.contextmanager
def _service_lock(rundir: Path) -> Iterator[None]:
    """Serialises start/stop: two containers may want the default bridge at the same moment."""
    fd = os.open(rundir / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _start_locked(rundir: Path, cfg: BridgeConfig, marker: Path, previous: dict[str, Any] | None) -> None:
    """Start the service; over PREVIOUS, the record of a run that is no longer whole, only what
    is missing is made again (each step is idempotent), and that record's claims are kept."""
    done: dict[str, Any] = {"config": asdict(cfg), "created_bridge": False, "nft": False,
                            "ip_forward_was": None, "dnsmasq": False}
    try:
        done["created_bridge"] = _bridge_up(cfg)
        if cfg.nat:
            done["ip_forward_was"] = IP_FORWARD.read_text().strip()
            IP_FORWARD.write_text("1\n")
            _nft(_nat_ruleset(cfg))
            done["nft"] = True
        if cfg.dhcp or cfg.dns:
            _stop_dnsmasq(rundir, cfg.name)  # one of a run whose record was wiped holds the bridge's ports
            _start_dnsmasq(rundir, cfg)
            done["dnsmasq"] = True
    except BaseException:
        _undo(rundir, done)  # what this attempt made, never the previous run's bridge
        raise
    if previous:
        done["created_bridge"] = done["created_bridge"] or bool(previous.get("created_bridge"))
        if previous.get("ip_forward_was") is not None:
            done["ip_forward_was"] = previous["ip_forward_was"]
    tmp = rundir / ".network_up.tmp"
    tmp.write_text(json.dumps(done, indent=1) + "\n")
    os.replace(tmp, marker)


def stop(rundir: Path, *, force: bool = False, cfg: BridgeConfig | None = None) -> None:
    """Undo start: dnsmasq, NAT table, the bridge (if start created it). Refuses while ports are
    attached. With RUNDIR's record gone (a run dir wiped by hand) what the settings CFG (default:
    the settings file) describe and is still there is reported, and removed with FORCE."""
    rundir = Path(rundir)
    marker = rundir / "network_up"
    if not marker.exists():
        _stop_leftovers(rundir, (cfg or load_config()).validate(), force=force)
        return
    with _service_lock(rundir):
        done = _read_record(marker)
        if done is None:
            raise WrongStateError("pyl-net is not running")
        cfg = BridgeConfig(**done["config"])
        ports = _ports(cfg.name)
        if ports and not force:
            raise WrongStateError(f"bridge {cfg.name} still has ports attached: {', '.join(ports)}",
                                  hint="stop the containers using it first (or use --force)")
        _undo(rundir, done)
        marker.unlink(missing_ok=True)


def _stop_leftovers(rundir: Path, cfg: BridgeConfig, *, force: bool) -> None:
    """stop without a record of what start did: find a run's pieces by what they are (the
    bridge by name, the NAT table by name, dnsmasq by the command line pyl gives it)."""
    dnsmasq, elsewhere = _dnsmasq_serving(cfg.name, rundir)
    if elsewhere is not None:
        raise WrongStateError(f"pyl-net is not running here ({rundir}): {cfg.name} is served by the "
                              f"pyl-net of run dir {elsewhere}", hint="stop it with PYL_RUNDIR set to that run dir's parent")
    from lxctools.runtime.devices import is_host_interface
    nft = _nft_table_exists(cfg.nft_table)
    bridge = is_host_interface(cfg.name)
    left = [what for what, there in ((f"bridge {cfg.name}", bridge), (f"nftables table ip {cfg.nft_table}", nft),
                                     (f"dnsmasq {', '.join(map(str, dnsmasq))}", dnsmasq)) if there]
    if not left:
        raise WrongStateError("pyl-net is not running")
    if not force:
        raise WrongStateError(f"no record of a start in {rundir}, but {', '.join(left)} "
                              "of an earlier run is still there",
                              hint="pyl-net stop --force removes them (the bridge too: whether pyl made it is not known)")
    rundir.mkdir(mode=0o755, parents=True, exist_ok=True)
    with _service_lock(rundir):
        if (rundir / "network_up").exists():  # a start came first: stop that run instead
            raise WrongStateError("pyl-net was started meanwhile", hint="run pyl-net stop again")
        _undo(rundir, {"config": asdict(cfg), "dnsmasq": bool(dnsmasq), "nft": nft, "created_bridge": bridge})


def status(rundir: Path) -> dict[str, Any]:
    rundir = Path(rundir)
    done = _read_record(rundir / "network_up")
    if done is None:
        return {"running": False}
    cfg = BridgeConfig(**done["config"])
    pid = _dnsmasq_pid(rundir)
    from lxctools.runtime import net
    link = net.host_link_stats(cfg.name)
    return {
        "running": True, "bridge": cfg.name, "address": cfg.address, "bridge_present": link is not None,
        "bridge_state": link.state if link else None, "nat": done.get("nft", False),
        "dnsmasq_pid": pid, "dhcp_range": "-".join(str(a) for a in ipam.dhcp_range(cfg.cidr)) if cfg.dhcp else None,
        "static_pool": "-".join(str(a) for a in ipam.pool_range(cfg.cidr)),
        "ports": _ports(cfg.name), "dhcp_leases": _dhcp_leases(rundir),
    }


def ensure_default_bridge(rundir: Path | None = None) -> None:
    """Called by net.setup_host when a veth wants pyl's default bridge and it is missing."""
    start(rundir or default_net_rundir(), load_config())


# -------------------------------------------------------------------------------------- helpers --

def _bridge_up(cfg: BridgeConfig) -> bool:
    from lxctools.runtime import net
    return net.ensure_bridge(cfg.name, cfg.cidr)


def _delete_link(name: str) -> None:
    from lxctools.runtime import net
    net.delete_link(name)


def _ports(bridge: str) -> list[str]:
    try:
        return sorted(os.listdir(f"/sys/class/net/{bridge}/brif"))
    except FileNotFoundError:
        return []


def _nat_ruleset(cfg: BridgeConfig) -> str:
    net = cfg.cidr.network
    t = cfg.nft_table
    # "add table" + "delete table" first makes the load idempotent on nft 1.0.6 (no "destroy" yet).
    return f"""add table ip {t}
delete table ip {t}
table ip {t} {{
    chain postrouting {{
        type nat hook postrouting priority srcnat; policy accept;
        ip saddr {net} ip daddr != {net} masquerade
    }}
    chain forward {{
        type filter hook forward priority filter; policy accept;
        iifname "{cfg.name}" accept
        oifname "{cfg.name}" ct state related,established accept
    }}
    chain input {{
        type filter hook input priority filter; policy accept;
        iifname "{cfg.name}" udp dport {{ 53, 67 }} accept
        iifname "{cfg.name}" tcp dport 53 accept
    }}
}}
"""


def _nft(script: str) -> None:
    if not shutil.which(NFT) and not os.path.exists(NFT):
        raise NotFoundError(f"{NFT} not found", hint="install the nftables package")
    proc = subprocess.run([NFT, "-f", "-"], input=script, text=True, capture_output=True, check=False)
    if proc.returncode != 0:
        raise KernelError(f"nft: {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else 'failed'}",
                          proc.returncode)


def _start_dnsmasq(rundir: Path, cfg: BridgeConfig) -> None:
    if not os.path.exists(cfg.dnsmasq):
        raise NotFoundError(f"{cfg.dnsmasq} not found", hint="install dnsmasq-base (or set PYL_DHCP=0 PYL_DNS=0)")
    cidr = cfg.cidr
    first, last = ipam.dhcp_range(cidr)
    args = [
        cfg.dnsmasq, "--conf-file=", "--strict-order", "--bind-interfaces",
        f"--interface={cfg.name}", "--except-interface=lo", f"--listen-address={cidr.ip}",
        f"--pid-file={rundir / 'dnsmasq.pid'}", f"--dhcp-leasefile={rundir / 'dnsmasq.leases'}",
        "--dhcp-no-override", "--dhcp-authoritative",
    ]
    if cfg.dhcp:
        args += [f"--dhcp-range={first},{last},{cidr.netmask},1h",
                 f"--dhcp-lease-max={int(last) - int(first) + 1}"]
    if not cfg.dns:
        args.append("--port=0")
    proc = subprocess.run(args, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        detail = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"
        raise PylError(f"dnsmasq failed to start: {detail}")
    pid = _dnsmasq_pid(rundir)
    if pid is not None:
        # Started for a container's start, dnsmasq is born in the supervisor's pyl.monitor
        # (pure v2); a service of the host, it must not keep that cgroup after the supervisor.
        from lxctools.runtime import cgroups
        try:
            cgroups.leave_monitor_cgroup(pid, cgroups.detect_layout())
        except (OSError, PylError):
            pass  # it runs where it is; the supervisor leaves pyl.monitor to the next one


def _dnsmasq_pid(rundir: Path) -> int | None:
    try:
        pid = int((rundir / "dnsmasq.pid").read_bytes().strip())
    except (FileNotFoundError, IsADirectoryError, ValueError):
        return None  # none, or no PID: what dnsmasq wrote would be one
    return pid if _is_dnsmasq(pid) else None  # a recycled PID is not ours to kill


def _dnsmasq_serving(bridge: str, rundir: Path) -> tuple[list[int], Path | None]:
    """The dnsmasq processes pyl-net started for BRIDGE that are RUNDIR's or nobody's (their
    run dir has no record of a start: wiped), and the run dir of another pyl-net that serves
    the bridge right now (a second PYL_RUNDIR), if one does. Known by the command line pyl-net
    gives them (the empty --conf-file=, --interface=BRIDGE, --pid-file=RUNDIR/dnsmasq.pid):
    lxc-net's and the host's own are not."""
    ours, elsewhere = [], None
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if not (argv and os.path.basename(argv[0]) == b"dnsmasq" and b"--conf-file=" in argv
                and f"--interface={bridge}".encode() in argv):
            continue
        pidfile = next((a[len(b"--pid-file="):] for a in argv if a.startswith(b"--pid-file=")), b"")
        where = Path(os.path.abspath(os.fsdecode(pidfile))).parent
        if where != Path(os.path.abspath(rundir)) and (where / "network_up").exists():
            elsewhere = where
        else:
            ours.append(int(entry.name))
    return ours, elsewhere


def _nft_table_exists(table: str) -> bool:
    if not os.path.exists(NFT):
        return False
    proc = subprocess.run([NFT, "list", "table", "ip", table], capture_output=True, check=False)
    return proc.returncode == 0


def _stop_dnsmasq(rundir: Path, bridge: str) -> None:
    """The recorded dnsmasq, and any other pyl-net started for BRIDGE (its pid file went with a
    wiped run dir): one left bound to the bridge would keep a new one from binding it."""
    pids = set(_dnsmasq_serving(bridge, rundir)[0])
    pid = _dnsmasq_pid(rundir)
    if pid is not None:
        pids.add(pid)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    for _ in range(100):
        if not any(_is_dnsmasq(pid) for pid in pids):
            break
        time.sleep(0.02)
    (rundir / "dnsmasq.pid").unlink(missing_ok=True)


def _is_dnsmasq(pid: int) -> bool:
    """PID is a live dnsmasq (a zombie is not: one just killed may wait a moment for its reaper)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return False
    comm, _, rest = stat.partition(b" (")[2].rpartition(b") ")
    return comm == b"dnsmasq" and not rest.startswith(b"Z")


def _undo(rundir: Path, done: dict[str, Any]) -> None:
    cfg = BridgeConfig(**done["config"])
    if done.get("dnsmasq"):
        _stop_dnsmasq(rundir, cfg.name)
    if done.get("nft"):
        _nft(f"add table ip {cfg.nft_table}\ndelete table ip {cfg.nft_table}\n")
    # ip_forward is left on when it was off before only if another pyl bridge may need it; we
    # cannot know that, so (like lxc-net) we leave it as it is now.
    if done.get("created_bridge"):
        _delete_link(cfg.name)


def _dhcp_leases(rundir: Path) -> list[dict[str, str]]:
    out = []
    try:  # dnsmasq's file, only shown: what is not a lease line is passed over
        lines = (rundir / "dnsmasq.leases").read_text(errors="replace").splitlines()
    except (FileNotFoundError, IsADirectoryError):
        return out
    for line in lines:
        parts = line.split()
        if len(parts) >= 4:
            out.append({"expires": parts[0], "mac": parts[1], "address": parts[2], "hostname": parts[3]})
    return out
