"""pyl-ls: list containers."""

from __future__ import annotations

HELP = """List containers.

  pyl-ls                    names in columns (one per line when not on a terminal)
  pyl-ls -f                 NAME STATE AUTOSTART GROUPS IPV4 IPV6 UNPRIVILEGED
  pyl-ls -f -F name,state,pid,ram,cpu,ipv4
  pyl-ls --running --json   an array of objects with every column, for scripts

Columns: NAME STATE PID RAM SWAP AUTOSTART GROUPS INTERFACE IPV4 IPV6 UNPRIVILEGED, and (pyl)
CPU MEMORY (limit) ROOTFS TEMPLATE. Differences from lxc-ls: --json; an unknown -F column is an
error (exit 64), not a silent empty table; -F implies -f."""
NEEDS_NAME = False
NAME_STATES = None
RCFILE = False

LXC_DEFAULT = ["NAME", "STATE", "AUTOSTART", "GROUPS", "IPV4", "IPV6", "UNPRIVILEGED"]
ALL_COLUMNS = ["NAME", "STATE", "PID", "RAM", "SWAP", "AUTOSTART", "GROUPS", "INTERFACE", "IPV4",
               "IPV6", "UNPRIVILEGED", "CPU", "MEMORY", "ROOTFS", "TEMPLATE"]
MIN_WIDTH = {"NAME": 4, "STATE": 5, "AUTOSTART": 9, "GROUPS": 6, "INTERFACE": 9, "IPV4": 4, "IPV6": 4,
             "PID": 3, "RAM": 5, "SWAP": 6, "UNPRIVILEGED": 12}
NEEDS_RUNTIME = {"PID", "RAM", "SWAP", "INTERFACE", "IPV4", "IPV6", "CPU"}
NEEDS_STATS = {"RAM", "SWAP", "CPU"}  # cgroup statistics: asked for only when shown
NEEDS_CONFIG = {"AUTOSTART", "GROUPS", "UNPRIVILEGED", "MEMORY", "ROOTFS", "TEMPLATE"}
NEEDS_NET = {"INTERFACE", "IPV4", "IPV6"}


def add_arguments(parser) -> None:
    parser.add_argument("-1", "--line", action="store_true", help="one name per line")
    parser.add_argument("-f", "--fancy", action="store_true", help="table output")
    parser.add_argument("-F", "--fancy-format", help="comma-separated columns (implies -f)")
    parser.add_argument("--json", action="store_true", help="JSON array of objects with every column")
    group = parser.add_mutually_exclusive_group()
    for flag in ("active", "running", "frozen", "stopped", "defined"):
        group.add_argument(f"--{flag}", action="store_true", help=f"only {flag} containers")
    parser.add_argument("-g", "--groups", help="only containers in all of these groups (comma list)")
    parser.add_argument("--filter", help="regular expression the name must match (unanchored)")
    parser.add_argument("regex", nargs="?", help="same as --filter")


def run(args, ctx) -> int:
    import sys
    from lxctools.errors import UsageError
    from lxctools.container import list_container_names

    layout = ctx.layout
    names = list_container_names(layout)
    pattern = args.filter or args.regex
    if pattern:
        import re
        try:
            regex = re.compile(pattern)
        except re.error as err:
            raise UsageError(f"invalid regular expression '{pattern}': {err}") from None
        names = [n for n in names if regex.search(n)]

    columns = LXC_DEFAULT
    if args.fancy_format is not None:
        columns = [c.strip().upper() for c in args.fancy_format.split(",") if c.strip()]
        if not columns:  # -F "$COLS" with COLS unset: a table of nothing, or bare names, hides it
            raise UsageError("-F needs at least one column", hint=f"columns: {', '.join(c.lower() for c in ALL_COLUMNS)}")
        bad = [c for c in columns if c not in ALL_COLUMNS]
        if bad:
            raise UsageError(f"invalid column '{bad[0].lower()}' (columns: {', '.join(c.lower() for c in ALL_COLUMNS)})")
    fancy = args.fancy or args.fancy_format is not None
    wanted = set(ALL_COLUMNS) if args.json else (set(columns) if fancy else set())

    state_filter = _state_filter(args)
    need_state = bool(state_filter) or fancy or args.json
    rows = []
    from lxctools.runstate import read_runstate
    for name in names:
        row = {"NAME": name}
        rs = read_runstate(layout, name) if need_state else None
        if rs is not None:
            if state_filter and not state_filter(rs.state):
                continue
            row["STATE"] = str(rs.state)
            row["_rs"] = rs
        rows.append(row)

    groups_wanted = [g for g in (args.groups or "").split(",") if g]
    if groups_wanted or wanted & NEEDS_CONFIG:
        _fill_config(rows, layout, ctx)
        if groups_wanted:
            rows = [r for r in rows if set(groups_wanted) <= set(r.get("_groups", []))]
    if wanted & NEEDS_RUNTIME:
        net = ("interfaces" if "INTERFACE" in wanted else "addresses") if wanted & NEEDS_NET else False
        _fill_runtime(rows, layout, net=net, stats=bool(wanted & NEEDS_STATS))

    out = sys.stdout
    if args.json:
        import json
        out.write(json.dumps([_json_row(r) for r in rows], indent=2) + "\n")
        return 0
    if fancy:
        _print_table(rows, columns, out)
        return 0
    if args.line:
        out.write("".join(f"{r['NAME']}\n" for r in rows))
        return 0
    _print_columns([r["NAME"] for r in rows], out)
    return 0


def _state_filter(args):
    if args.running:
        return lambda s: s.is_running
    if args.active:
        return lambda s: s.is_active
    if args.frozen:
        return lambda s: str(s) == "FROZEN"
    if args.stopped:
        return lambda s: str(s) == "STOPPED"
    return None


def _fill_config(rows: list[dict], layout, ctx) -> None:
    from lxctools.config.summary import Summaries
    summaries = Summaries(layout)
    for row in rows:
        rs = row.get("_rs")
        values = rs.record.get("values") if rs is not None and rs.record and rs.state.is_running else None
        summary = summaries.get(row["NAME"])
        if values is None:
            if summary["error"]:
                import sys
                sys.stderr.write(f"{ctx.prog}: {row['NAME']}: {summary['error']}\n")
            values = summary["values"]
        groups = values.get("lxc.group") or []
        groups = [groups] if isinstance(groups, str) else groups
        groups = [g for item in groups for g in item.replace(",", " ").split()]
        row["_groups"] = groups
        row["AUTOSTART"] = str(values.get("lxc.start.auto", "0"))
        row["GROUPS"] = ", ".join(groups) if groups else "-"
        row["UNPRIVILEGED"] = "true" if values.get("lxc.idmap") else "false"
        limit = values.get("lxc.cgroup2.memory.max") or values.get("lxc.cgroup.memory.limit_in_bytes")
        row["MEMORY"] = str(limit) if limit else "-"
        rootfs = str(values.get("lxc.rootfs.path") or "-")
        row["ROOTFS"] = rootfs
        row["TEMPLATE"] = summary["template"]
    summaries.save()


def _fill_runtime(rows: list[dict], layout, net: str | bool, stats: bool) -> None:
    """PID, RAM, SWAP, CPU and (net: "interfaces" for the INTERFACE column too, "addresses"
    when only IPV4/IPV6 are shown, False for none) addresses, from the supervisor."""
    from lxctools.container import Container, live_info
    running = [r for r in rows if r.get("_rs") is not None and r["_rs"].state.is_running]
    for row in rows:
        for col in NEEDS_RUNTIME:
            row[col] = "-"
    if not running:
        return
    live = live_info(layout, [r["NAME"] for r in running], net=net, stats=stats) or {}
    for row in running:
        rs = row["_rs"]
        row["PID"] = str(rs.pid or "-")
        entry = live.get(row["NAME"])
        usage: dict = {}
        if entry is not None:
            usage = entry.get("stats") or {}
        elif stats:  # orphaned (supervisor gone): read the cgroup here
            local = Container(row["NAME"], layout).stats(rs)
            from dataclasses import asdict
            usage = asdict(local) if local is not None else {}
        if usage.get("memory_bytes") is not None:
            row["RAM"] = f"{usage['memory_bytes'] / 1048576:.2f}MB"
            row["_ram"] = usage["memory_bytes"]
        if usage.get("swap_bytes") is not None:
            row["SWAP"] = f"{usage['swap_bytes'] / 1048576:.2f}MB"
            row["_swap"] = usage["swap_bytes"]
        if usage.get("cpu_ns") is not None:
            row["CPU"] = f"{usage['cpu_ns'] / 1e9:.2f}s"
            row["_cpu"] = usage["cpu_ns"]
        if not net:
            continue
        if entry is None:  # orphaned: ask its network namespace from here
            from lxctools.container import orphan_netinfo
            what = "addresses" if net == "addresses" else "interfaces"
            found = orphan_netinfo(rs, what)
            if found is None:
                continue
            entry = {what: found}
        if "addresses" in entry:
            v4, v6 = entry["addresses"]["ipv4"], entry["addresses"]["ipv6"]
        elif "interfaces" in entry:
            ifaces = entry["interfaces"]
            row["INTERFACE"] = ", ".join(i["name"] for i in ifaces) or "-"
            v4 = [a.split("/")[0] for i in ifaces if i["name"] != "lo" for a in i.get("ipv4", [])]
            v6 = [a.split("/")[0] for i in ifaces if i["name"] != "lo" for a in i.get("ipv6", [])]
        else:
            continue
        row["IPV4"] = ", ".join(v4) or "-"
        row["IPV6"] = ", ".join(v6) or "-"


def _json_row(row: dict) -> dict:
    out = {}
    for col in ALL_COLUMNS:
        value = row.get(col, "-")
        key = col.lower()
        if col == "PID":
            value = int(value) if str(value).isdigit() else None
        elif col == "RAM":
            value = row.get("_ram")
        elif col == "SWAP":
            value = row.get("_swap")  # bytes, as RAM: "0.00MB" is for people
        elif col == "CPU":
            value = row.get("_cpu")
        elif col == "GROUPS":
            value = row.get("_groups", [])
        elif col == "AUTOSTART":
            value = value == "1"
        elif col == "UNPRIVILEGED":
            value = value == "true"
        elif col in ("IPV4", "IPV6", "INTERFACE"):
            value = [] if value in ("-", None) else [v.strip() for v in str(value).split(",")]
        elif value == "-":
            value = None
        out[key] = value
    return out


def _print_table(rows: list[dict], columns: list[str], out) -> None:
    if not rows:
        return
    widths = {c: max([MIN_WIDTH.get(c, len(c))] + [len(str(r.get(c, "-"))) for r in rows]) for c in columns}
    lines = ["".join(f"{c:<{widths[c]}} " for c in columns)]
    lines += ["".join(f"{str(r.get(c, '-')):<{widths[c]}} " for c in columns) for r in rows]
    out.write("\n".join(lines) + "\n")


def _print_columns(names: list[str], out) -> None:
    import os
    import sys
    if not names:
        return
    width = max(4, max(len(n) for n in names))
    if not out.isatty():
        out.write("".join(f"{n}\n" for n in names))
        return
    try:
        term = os.get_terminal_size(sys.stdout.fileno()).columns
    except OSError:
        term = 80
    per_line = max(1, term // (width + 1))
    for i in range(0, len(names), per_line):
        out.write("".join(f"{n:<{width}} " for n in names[i:i + per_line]).rstrip() + "\n")
