"""pyl-top: resource use of running containers, refreshed live (or as CSV / JSON lines)."""

from __future__ import annotations

HELP = """Show CPU, block I/O, memory and process counts of running containers, refreshed every -d seconds.

  pyl-top                       live table; keys: q quits, n c b m s k p sort (again: reverse), r reverses
  pyl-top -s m -r               sorted by memory, smallest first
  pyl-top --batch -d 60         CSV lines for a log (header once; lxc-top's columns, then pids)
  pyl-top --json -n 1           one JSON object per refresh and line; -n: stop after COUNT refreshes
Sort keys: n name, c CPU, b block I/O, m memory, s memory+swap, k kernel memory, p processes; numbers
sort largest first. Stats come from cgroup v1 or v2, whichever the host has. Differences from lxc-top:
no terminal is needed (batch, JSON, or a plain table when stdout is not a terminal); CPU % since the
last refresh and a PIDs column; unknown values are empty CSV fields, not 0; -d defaults to 3 in batch
mode too (lxc-top: 300)."""
NEEDS_NAME = False
NAME_STATES = None
RCFILE = False

WIDTHS = (18, 12, 12, 12, 7, 36, 11, 11, 11, 6)
HEAD1 = ("Container", "CPU", "CPU", "CPU", "CPU", "BlkIO", "Mem", "MemSw", "KMem", "Procs")
HEAD2 = ("Name", "Used", "Sys", "User", "%", "Total(Read/Write)", "Used", "Used", "Used", "")


def add_arguments(parser) -> None:
    from lxctools.cli.driver import seconds
    parser.add_argument("-d", "--delay", type=seconds, default=3.0, metavar="SECS", help="seconds between refreshes (default 3)")
    parser.add_argument("-s", "--sort", default="n", choices=list("ncbmskp"), help="sort key (default n)")
    parser.add_argument("-r", "--reverse", action="store_true", help="reverse the sort order")
    out = parser.add_mutually_exclusive_group()
    out.add_argument("-b", "--batch", action="store_true", help="CSV lines (header once), no terminal needed")
    out.add_argument("--json", action="store_true", help="one JSON object per refresh and line")
    parser.add_argument("-n", "--iterations", type=int, default=0, metavar="COUNT",
                        help="stop after COUNT refreshes (default: until q or ^C)")


def sample(ctx, previous: dict) -> list:
    """One StatsRow per running container of the lxcpath."""
    import time
    from lxctools import inspection
    from lxctools.cli.ps import running_containers
    from lxctools.errors import PylError
    rows = []
    for name, rs in running_containers(ctx):
        container = ctx.container(name)
        try:
            plan = container.cgroup_plan(rs)  # once per refresh: statistics and block I/O
        except (PylError, OSError):
            continue  # stopped since it was listed
        stats = container.stats(rs, plan)
        if stats is None:
            continue
        now = int(time.time() * 1000)
        rows.append(inspection.stats_row(name, stats, time_ms=now, iops=inspection.blkio_iops(plan),
                                         previous=previous.get(name)))
    return rows


def humanize(n: int | None) -> str:
    if n is None:
        return "-"
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n} B"


def _seconds(ns: int | None) -> str:
    return "-" if ns is None else f"{ns / 1e9:.2f}"


def _cells(name: str, cpu: int | None, sys_: int | None, user: int | None, percent: float | None,
           read: int | None, write: int | None, mem: int | None, memsw: int | None, kmem: int | None,
           pids: int | None) -> tuple[str, ...]:
    total = None if read is None and write is None else (read or 0) + (write or 0)
    blk = "-" if total is None else f"{humanize(total)}({humanize(read)}/{humanize(write)})"
    return (name, _seconds(cpu), _seconds(sys_), _seconds(user), "-" if percent is None else f"{percent:.1f}",
            blk, humanize(mem), humanize(memsw), humanize(kmem), "-" if pids is None else str(pids))


def _line(cells: tuple[str, ...]) -> str:
    return " ".join(f"{c:<{w}}" if i in (0, 5) else f"{c:>{w}}" for i, (c, w) in enumerate(zip(cells, WIDTHS))).rstrip()


def table(rows: list, *, max_rows: int | None = None, ansi: bool = False) -> list[str]:
    """The screen: two header rows, one line per container, a TOTAL line."""
    bold = ("\x1b[1;7m", "\x1b[0m") if ansi else ("", "")
    lines = [bold[0] + _line(HEAD1) + bold[1], bold[0] + _line(HEAD2) + bold[1]]
    shown = rows if max_rows is None else rows[:max(0, max_rows)]
    for r in shown:
        lines.append(_line(_cells(r.name, r.cpu_ns, r.cpu_sys_ns, r.cpu_user_ns, r.cpu_percent, r.blkio_read,
                                  r.blkio_write, r.mem_bytes, r.memsw_bytes, r.kmem_bytes, r.pids)))

    def total(attr: str):
        values = [getattr(r, attr) for r in rows if getattr(r, attr) is not None]
        return sum(values) if values else None

    label = f"TOTAL {len(shown)} of {len(rows)}"
    lines.append(_line(_cells(label, total("cpu_ns"), total("cpu_sys_ns"), total("cpu_user_ns"),
                              total("cpu_percent"), total("blkio_read"), total("blkio_write"), total("mem_bytes"),
                              total("memsw_bytes"), total("kmem_bytes"), total("pids"))))
    return lines


def handle_key(key: str, sort: str, reverse: bool) -> tuple[str, bool, bool]:
    """(sort, reverse, quit) after a key press, as lxc-top: the current sort letter reverses."""
    if key in ("q", "Q", "\x03", "\x04"):
        return sort, reverse, True
    if key == "r":
        return sort, not reverse, False
    if key in "ncbmskp" and len(key) == 1:
        return (sort, not reverse, False) if key == sort else (key, False, False)
    return sort, reverse, False


def run(args, ctx) -> int:
    import json
    import os
    import sys
    import time
    from lxctools.errors import UsageError
    from lxctools import inspection as inspect

    if args.delay < 0:
        raise UsageError("-d needs a number of seconds >= 0")
    if args.iterations < 0:
        raise UsageError("-n needs a count >= 0")
    out = sys.stdout
    screen = not (args.batch or args.json) and out.isatty()
    keys = screen and sys.stdin.isatty()
    sort, reverse = args.sort, args.reverse
    hz = os.sysconf("SC_CLK_TCK")
    previous: dict = {}
    done = 0
    restore = _cbreak(sys.stdin) if keys else None
    try:
        if screen:
            out.write("\x1b[?25l")  # hide the cursor while redrawing
        if args.batch:
            out.write(inspect.CSV_HEADER + inspect.CSV_EXTRA + "\n")
        while True:
            rows = sample(ctx, previous)
            previous = {r.name: r for r in rows}
            rows = inspect.sort_rows(rows, sort, reverse)
            if args.batch:
                out.write("".join(inspect.csv_line(r, hz) + "\n" for r in rows))
            elif args.json:
                out.write(json.dumps({"time_ms": int(time.time() * 1000),
                                      "containers": [r.to_json() for r in rows]}) + "\n")
            elif screen:
                height = _terminal_lines()
                out.write("\x1b[H\x1b[2J" + "\n".join(table(rows, max_rows=height - 4, ansi=True)) + "\n")
            else:
                out.write("\n".join(table(rows)) + "\n\n")
            out.flush()
            done += 1
            if args.iterations and done >= args.iterations:
                return 0
            if keys:
                key = _wait_key(sys.stdin, args.delay)
                if key:
                    sort, reverse, quit_ = handle_key(key, sort, reverse)
                    if quit_:
                        return 0
            else:
                time.sleep(args.delay)
    finally:
        if screen:
            out.write("\x1b[?25h")
            out.flush()
        if restore is not None:
            restore()


def _terminal_lines() -> int:
    import os
    try:
        return os.get_terminal_size().lines
    except OSError:
        return 24


def _cbreak(stream):
    """Keys without Enter, no echo; returns the function restoring the terminal."""
    import termios
    import tty
    fd = stream.fileno()
    saved = termios.tcgetattr(fd)
    tty.setcbreak(fd)
    return lambda: termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def _wait_key(stream, timeout: float) -> str | None:
    import os
    import select
    ready, _, _ = select.select([stream.fileno()], [], [], timeout)
    if not ready:
        return None
    data = os.read(stream.fileno(), 16)
    return data[:1].decode(errors="replace") if data else "q"
