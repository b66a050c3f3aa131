"""pyl-net: pyl's default bridge service (the counterpart of LXC's lxc-net)."""

from __future__ import annotations

HELP = """Start, stop or show pyl's default bridge: pylbr0 on 10.0.7.1/24 (lxc-net's lxcbr0 uses
10.0.3.0/24, so both can run side by side), IPv4 forwarding, masquerading NAT in the nftables
table 'ip pyl', and a dnsmasq bound to the bridge alone (DHCP from the lower half of the subnet;
ipv4.address = auto hands out the upper half).

  pyl-net start            bring it up (a no-op if it is up; a bridge deleted or a dnsmasq
                           that died under it is brought back, the ports left as they are)
  pyl-net stop [--force]   take it down; refuses while containers are attached unless --force;
                           with its record in the run dir wiped, names what is left of the run
                           (bridge, NAT table, dnsmasq) and removes it with --force
  pyl-net status [--json]  what is running, attached ports, DHCP leases

Settings: /etc/default/pyl-net (PYL_BRIDGE=, PYL_ADDR=, PYL_DHCP=, PYL_DNS=, PYL_NAT=,
PYL_NFT_TABLE=). A container whose veth links to the default bridge starts the service itself."""
NEEDS_NAME = False
NAME_STATES = None
RCFILE = False


def add_arguments(parser) -> None:
    parser.add_argument("action", choices=("start", "stop", "status"), help="what to do")
    parser.add_argument("--force", action="store_true", help="stop even with containers attached")
    parser.add_argument("--json", action="store_true", help="status as one JSON object")
    parser.add_argument("--config", help="settings file (default /etc/default/pyl-net)")


def run(args, ctx) -> int:
    import sys
    from pathlib import Path

    from lxctools.container import default_bridge

    rundir = Path(ctx.layout.rundir) / "net"
    info = default_bridge(args.action, rundir, config_file=args.config, force=args.force)
    if args.action == "start":
        if not ctx.quiet:
            print(f"{info['bridge']} {info['address']} up")
        return 0
    if args.action == "stop":
        return 0
    if args.json:
        import json
        sys.stdout.write(json.dumps(info, indent=2) + "\n")
        return 0 if info["running"] else 1
    if not info["running"]:
        print("pyl-net: not running")
        return 1
    rows = [("bridge", f"{info['bridge']} ({info['bridge_state'] or 'missing'})"),
            ("address", info["address"]), ("nat", "yes" if info["nat"] else "no"),
            ("dnsmasq", str(info["dnsmasq_pid"] or "not running")),
            ("dhcp range", info["dhcp_range"] or "off"), ("static pool", info["static_pool"]),
            ("ports", " ".join(info["ports"]) or "-"), ("dhcp leases", str(len(info["dhcp_leases"])))]
    for key, value in rows:
        print(f"{key + ':':13} {value}")
    for lease in info["dhcp_leases"]:
        print(f"  {lease['address']:15} {lease['mac']} {lease['hostname']}")
    return 0
