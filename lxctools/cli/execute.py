"""pyl-execute: run a command as an application container."""

from __future__ import annotations

HELP = """Run COMMAND in a new container whose PID 1 is a small init (signals forwarded, zombies
reaped); the container stops when COMMAND exits, and pyl-execute exits with its status
(128+N for a signal; LXC's tool re-raises the signal on itself instead).

  pyl-execute -n c1 -- echo hello world
COMMAND defaults to lxc.execute.cmd. stdin/stdout/stderr are this process's own (byte-exact)."""
NEEDS_NAME = True
NAME_STATES = "execute"
TAKES_COMMAND = True


def add_arguments(parser) -> None:
    from lxctools.cli.start import add_config_arguments
    add_config_arguments(parser)
    parser.add_argument("-u", "--uid", type=int, help="run as this uid (lxc.init.uid)")
    parser.add_argument("-g", "--gid", type=int, help="run as this gid (lxc.init.gid)")


def run(args, ctx) -> int:
    from lxctools.errors import UsageError
    from lxctools.cli.driver import check_ids
    from lxctools.cli.start import config_overrides
    check_ids(args.uid, args.gid)
    container = ctx.container(args.name)
    rcfile, overrides = config_overrides(args)
    if args.uid is not None:
        overrides.append(f"lxc.init.uid={args.uid}")
    if args.gid is not None:
        overrides.append(f"lxc.init.gid={args.gid}")
    command = args.command
    if not command:
        values, _ = container.start_values(rcfile, overrides)
        cmd = values.get("lxc.execute.cmd")
        if not cmd:
            raise UsageError("missing command to execute (give -- COMMAND or set lxc.execute.cmd)")
        import shlex
        command = shlex.split(str(cmd))
    return container.execute(command, rcfile=rcfile, overrides=overrides)
