"""pyl-info: state, PID, addresses, resource use and config keys of one container."""

from __future__ import annotations

HELP = """Show a container's Name, State, PID, IP, CPU/BlkIO/Memory/KMem use and per-link traffic.

  pyl-info -n c1              everything
  pyl-info -n c1 -p -H        bare init PID, for scripts
  pyl-info -n c1 -c lxc.net.0.link
  pyl-info -n c1 --json       all fields as one JSON object
Stats come from cgroup v1 or v2, whichever the host has (lxc-info 5.0 prints none on pure v2)."""
NEEDS_NAME = True
NAME_STATES = "info"


def add_arguments(parser) -> None:
    from lxctools.cli.complete import config_keys
    arg = parser.add_argument("-c", "--config", action="append", default=[], metavar="KEY",
                              help="print a config key (repeatable)")
    arg.completer = config_keys
    parser.add_argument("-s", "--state", action="store_true", help="state")
    parser.add_argument("-p", "--pid", action="store_true", help="init PID")
    parser.add_argument("-i", "--ips", action="store_true", help="IP addresses")
    parser.add_argument("-S", "--stats", action="store_true", help="CPU, block I/O, memory, traffic")
    parser.add_argument("-H", "--no-humanize", action="store_true", help="raw numbers")
    parser.add_argument("--json", action="store_true", help="one JSON object with every field")


def humanize(n: int) -> str:
    if n > 1 << 30:
        return f"{n / (1 << 30):.2f} GiB"
    if n > 1 << 20:
        return f"{n / (1 << 20):.2f} MiB"
    if n > 1024:
        return f"{n / 1024:.2f} KiB"
    return f"{n} bytes"


# Every key --json has, stopped or running: a script reads info["ips"] without asking first.
EMPTY = {"ips": [], "links": [], "cpu_ns": None, "blkio_bytes": None, "memory_bytes": None, "kmem_bytes": None}


def gather(container, want_stats: bool, want_ips: bool) -> dict:
    from lxctools.container import live_info
    live = live_info(container.layout, [container.name], stats=want_stats, net=want_ips or want_stats)
    entry = (live or {}).get(container.name)
    if entry is not None:
        info: dict = {"name": container.name, "state": entry["state"], "pid": entry["pid"]}
        stats = entry.get("stats")
        interfaces = entry.get("interfaces")
    else:
        # No supervisor (nothing runs), or it died and the container was orphaned: read locally.
        rs = container.runstate()
        info = {"name": container.name, "state": str(rs.state), "pid": rs.pid}
        if not rs.state.is_running:
            return info
        local = container.stats(rs) if want_stats else None
        from dataclasses import asdict
        stats = asdict(local) if local is not None else None
        interfaces = None
        if want_ips or want_stats:
            from lxctools.container import orphan_netinfo
            interfaces = orphan_netinfo(rs)
    info["ips"] = []
    info["links"] = []
    for iface in interfaces or []:
        if iface["name"] != "lo":
            info["ips"] += [a.split("/")[0] for a in iface.get("ipv4", []) + iface.get("ipv6", [])]
    if interfaces:
        host_links = _host_links(container.runstate().record)
        for iface in interfaces:
            if iface["name"] in host_links:
                info["links"].append({"link": host_links[iface["name"]], "tx_bytes": iface.get("tx_bytes", 0),
                                      "rx_bytes": iface.get("rx_bytes", 0)})
    if want_stats and stats:
        blkio = stats.get("blkio_bytes")
        info.update({"cpu_ns": stats.get("cpu_ns"), "blkio_bytes": sum(blkio) if blkio else None,
                     "memory_bytes": stats.get("memory_bytes"), "kmem_bytes": stats.get("kmem_bytes")})
    return info


def _host_links(record: dict | None) -> dict[str, str]:
    """Container interface name -> host-side link (the veth peer, or the parent link)."""
    record = record or {}
    values = record.get("values", {})
    veth_hosts = list((record.get("net") or {}).get("veth_hosts", []))
    indexes = sorted({int(k.split(".")[2]) for k in values if k.startswith("lxc.net.") and k.endswith(".type")})
    links: dict[str, str] = {}
    for i in indexes:
        kind = values.get(f"lxc.net.{i}.type")
        inside = values.get(f"lxc.net.{i}.name") or f"eth{i}"
        if kind == "veth":
            host = values.get(f"lxc.net.{i}.veth.pair")
            if host in veth_hosts:
                veth_hosts.remove(host)
            elif veth_hosts:
                host = veth_hosts.pop(0)
        else:
            host = values.get(f"lxc.net.{i}.link")
        if host:
            links[inside] = host
    return links


def run(args, ctx) -> int:
    import sys
    container = ctx.container(args.name)
    out = sys.stdout
    defined = container.is_defined()
    if not defined and not container.runstate().state.is_running:
        from lxctools.errors import NotFoundError
        raise NotFoundError("doesn't exist")
    if args.config:
        values = container.load_config(args.rcfile).values()
        from lxctools.config.keys import lookup
        for key in args.config:
            lookup(key)  # unknown key -> ConfigError with a suggestion
            value = values.get(key)
            if args.no_humanize and len(args.config) == 1:
                out.write(_format_value(value, bare=True) + "\n")
            else:
                out.write(f"{key} = {_format_value(value)}\n".replace(" = \n", " =\n"))
        if not (args.state or args.pid or args.ips or args.stats):
            return 0
    selectors = [args.state, args.pid, args.ips] + [args.stats] * 5
    everything = not any(selectors) or args.json
    info = gather(container, want_stats=everything or args.stats, want_ips=everything or args.ips)
    if args.json:
        import json
        out.write(json.dumps({**info, **{k: v for k, v in EMPTY.items() if k not in info}}, indent=2) + "\n")
        return 0
    bare = args.no_humanize and sum(bool(s) for s in selectors) == 1
    lines: list[tuple[str, str]] = []
    if everything:
        lines.append(("Name:", info["name"]))
    if everything or args.state:
        lines.append(("State:", info["state"]))
    running = info["state"] != "STOPPED"
    if running and (everything or args.pid):
        lines.append(("PID:", str(info["pid"])))
    if running and (everything or args.ips):
        lines += [("IP:", ip) for ip in info.get("ips", [])]
    if running and (everything or args.stats):
        h = (lambda n: str(n)) if args.no_humanize else humanize
        if info.get("cpu_ns") is not None:
            cpu = str(info["cpu_ns"]) if args.no_humanize else f"{info['cpu_ns'] / 1e9:.2f} seconds"
            lines.append(("CPU use:", cpu))
        if info.get("blkio_bytes") is not None:
            lines.append(("BlkIO use:", h(info["blkio_bytes"])))
        if info.get("memory_bytes") is not None:
            lines.append(("Memory use:", h(info["memory_bytes"])))
        if info.get("kmem_bytes") is not None:
            lines.append(("KMem use:", h(info["kmem_bytes"])))
        for link in info.get("links", []):
            lines.append(("Link:", link["link"]))
            lines.append((" TX bytes:", h(link["tx_bytes"])))
            lines.append((" RX bytes:", h(link["rx_bytes"])))
            lines.append((" Total bytes:", h(link["tx_bytes"] + link["rx_bytes"])))
    for label, value in lines:
        out.write(f"{value}\n" if bare else f"{label:<15} {value}\n")
    return 0


def _format_value(value, bare: bool = False) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return "\n".join(value)
    return str(value)
