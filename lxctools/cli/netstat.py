"""pyl-netstat: sockets of a running container's network namespace, seen from the host."""

from __future__ import annotations

HELP = """Show the sockets of a running container, with no tool needed inside it.

  pyl-netstat -n c1             TCP, UDP and UNIX sockets with their owning process (host PID)
  pyl-netstat -n c1 -l -t       listening TCP sockets only (-t TCP, -u UDP, -x UNIX; combinable)
  pyl-netstat -n c1 --json      an array of objects (pid and nspid, the PID inside the container)
  pyl-netstat -n c1 -- -tlnp    the host's ss with these options, run in the container's network
                                namespace only (`-- netstat -lnp` runs netstat instead)
The table is read from /proc/<init>/net/{tcp,tcp6,udp,udp6,unix}. Note: here -l means listening (as
in netstat and ss); the log priority is --logpriority. Differences from lxc-netstat: no netstat
needed, and no mount namespace trick; listening and connected sockets are both shown by default."""
NEEDS_NAME = True
NAME_STATES = "netstat"
TAKES_COMMAND = True
RCFILE = False


def add_arguments(parser) -> None:
    # netstat's -l wins over the common -l (--logpriority keeps working).
    own = parser.add_argument_group("netstat options", conflict_handler="resolve")
    own.add_argument("-l", "--listening", action="store_true", help="only listening sockets")
    own.add_argument("-t", "--tcp", action="store_true", help="TCP sockets")
    own.add_argument("-u", "--udp", action="store_true", help="UDP sockets")
    own.add_argument("-x", "--unix", action="store_true", help="UNIX sockets")
    own.add_argument("--json", action="store_true", help="JSON array of objects")


def tool_argv(command: list[str]) -> list[str]:
    """`-- OPTIONS` -> ss OPTIONS; `-- ss|netstat|/path/tool OPTIONS` -> that tool."""
    import shutil
    if command and (command[0] in ("ss", "netstat") or "/" in command[0]):
        return list(command)
    tool = "ss" if shutil.which("ss") or not shutil.which("netstat") else "netstat"
    return [tool, *command]


def kinds_of(args) -> list[str]:
    chosen = [k for k, on in (("tcp", args.tcp), ("udp", args.udp), ("unix", args.unix)) if on]
    return chosen or ["tcp", "udp", "unix"]


def run(args, ctx) -> int:
    import json
    import sys
    from lxctools import inspection as inspect
    from lxctools.errors import WrongStateError
    container = ctx.container(args.name)
    rs = container.runstate()
    if not rs.state.allows("netstat") or not rs.pid:
        container.require_defined()
        raise WrongStateError(f"container is {rs.state}, not running")
    if args.command:
        return container.exec_in_netns(tool_argv(args.command))
    from lxctools.cli.ps import container_refs
    ref = container_refs(ctx, [(args.name, rs)])[0]
    owners = set(ref.pids) | set(inspect.pids_in_netns(rs.pid))
    rows = inspect.read_sockets(rs.pid, kinds=kinds_of(args), owner_pids=owners, level=ref.level)
    if args.listening:
        rows = [r for r in rows if r.listening]
    if args.json:
        sys.stdout.write(json.dumps([r.to_json() for r in rows], indent=2) + "\n")
    else:
        sys.stdout.write("".join(line + "\n" for line in inspect.socket_table(rows)))
    return 0
