"""pyl-ps: processes with the container they belong to (the old lxc-ps, revived)."""

from __future__ import annotations

HELP = """List processes with the container each belongs to, and its PID inside the container.

  pyl-ps                        every process: CONTAINER PID NSPID USER TIME CMD
  pyl-ps -n c1,c2               only these containers' processes (NSPID = PID inside the container)
  pyl-ps --lxc | --host         only processes in some container / in none
  pyl-ps --json -n c1           an array of objects, for scripts
  pyl-ps -n c1 -- -o pid,user,args
                                the host's ps with these options, CONTAINER column prepended (as
                                lxc-ps; the options must keep a PID column)
A process belongs to a container when it is in its cgroup (pyl.payload.NAME) or in its pid
namespace; containers of other lxcpaths show by their cgroup name. Differences from lxc-ps: without
ps options the table comes from /proc (no ps needed, NSPID column); a stopped or unknown name given
with -n is an error. As lxc-ps, --lxc and -n prepend -e to ps options (unless they already select
every process)."""
NEEDS_NAME = False
OPTIONAL_NAME = True
NAME_IS_PATTERN = True  # a comma list: validated name by name in run()
NAME_STATES = "ps"
TAKES_COMMAND = True
RCFILE = False
NAME_HELP = "only these containers (comma-separated names)"


def add_arguments(parser) -> None:
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--lxc", action="store_true", help="only processes inside containers")
    which.add_argument("--host", action="store_true", help="only processes outside containers")
    parser.add_argument("--json", action="store_true", help="JSON array of objects")


def running_containers(ctx, names: list[str] | None = None) -> list[tuple[str, object]]:
    """(name, RunState) of running containers of the lxcpath; with ``names``, exactly those,
    and a WrongStateError/NotFoundError for one that is not running or not there."""
    from lxctools.container import list_container_names
    from lxctools.errors import NotFoundError, WrongStateError
    from lxctools.runstate import read_runstate
    out = []
    if names is None:
        for name in list_container_names(ctx.layout):
            rs = read_runstate(ctx.layout, name)
            if rs.state.is_running and rs.pid:
                out.append((name, rs))
        return out
    for name in names:
        rs = read_runstate(ctx.layout, name)
        if not rs.state.is_running or not rs.pid:
            who = f"'{name}' " if len(names) > 1 else ""  # the CLI already names a single container
            if not ctx.container(name).is_defined():
                raise NotFoundError(f"{who}does not exist in {ctx.layout.lxcpath_str}")
            raise WrongStateError(f"{who}is not running")
        out.append((name, rs))
    return out


def container_refs(ctx, running: list[tuple[str, object]]) -> list:
    """inspection.ContainerRef for each running container: its cgroup's PIDs, pid namespace, depth."""
    from lxctools import inspection
    from lxctools.container import cgroup_pids_of
    pids = cgroup_pids_of(ctx.layout, running)
    return [inspection.make_ref(name, rs.pid, pids[name]) for name, rs in running]


def split_names(text: str | None) -> list[str] | None:
    if text is None:
        return None
    from lxctools.names import validate_name
    return [validate_name(n.strip()) for n in text.split(",") if n.strip()]


def _ps_options(options: list[str], select_all: bool) -> list[str]:
    # lxc-ps prepended -e for --lxc/--name: processes of a container rarely share ps's terminal.
    everything = {"-e", "-A", "ax", "aux", "axu", "-ax", "-aux", "--deselect"}
    if select_all and not everything & set(options):
        return ["-e", *options]
    return options


def run(args, ctx) -> int:
    import sys
    from lxctools.errors import UsageError
    from lxctools import inspection as inspect

    names = split_names(args.name)
    only = "names" if names else "lxc" if args.lxc else "host" if args.host else "all"
    refs = container_refs(ctx, running_containers(ctx, names))
    out = sys.stdout
    if args.command:
        if args.json:
            raise UsageError("--json cannot be combined with ps options")
        return _run_ps(_ps_options(args.command, only in ("names", "lxc")), refs, only, names or [])
    rows = inspect.list_processes(refs, only=only, names=names or [])
    if args.json:
        import json
        out.write(json.dumps([r.to_json() for r in rows], indent=2) + "\n")
    else:
        out.write("".join(line + "\n" for line in inspect.process_table(rows)))
    return 0


def _run_ps(options: list[str], refs: list, only: str, names: list[str]) -> int:
    import subprocess
    import sys
    from lxctools.errors import NotFoundError, PylError
    from lxctools import inspection as inspect
    try:
        proc = subprocess.run(["ps", *options], capture_output=True, text=True, errors="replace")
    except FileNotFoundError:
        raise NotFoundError("'ps' is not installed on the host (run pyl-ps without ps options)") from None
    if proc.returncode != 0 and not proc.stdout:
        # ps's usage text is a dozen lines: its first one says what was wrong, in our one line
        said = next((line.strip() for line in proc.stderr.splitlines() if line.strip()), "")
        raise PylError(f"ps {' '.join(options)} failed (exit {proc.returncode})" + (f": {said}" if said else ""))
    sys.stderr.write(proc.stderr)
    lines = proc.stdout.splitlines()
    if not lines:
        return proc.returncode
    index, end = inspect.pid_column(lines[0])
    pids = [p for p in (inspect.pid_of_line(line, index, end) for line in lines[1:]) if p is not None]
    owner = inspect.owners(pids, refs, foreign=only != "names")
    sys.stdout.write(inspect.prefix_ps_output(proc.stdout, owner, only=only, names=names))
    return proc.returncode
