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
    parser.add_argument("-f", dest="rcfile_short", metavar="FILE", help="same as --rcfile")
    for kind in ("net", "ipc", "uts"):
        parser.add_argument(f"--share-{kind}", metavar="NAME|PID",
                            help=f"join the {kind} namespace of a running container or process")
    parser.add_argument("-s", "--define", action="append", default=[], metavar="KEY=VAL",
                        help="override a config key (repeatable)")
    parser.add_argument("-u", "--uid", type=int, help="run as this uid (lxc.init.uid)")
    parser.add_argument("-g", "--gid", type=int, help="run as this gid (lxc.init.gid)")


def run(args, ctx) -> int:
    from lxctools.errors import UsageError
    container = ctx.container(args.name)
    overrides = list(args.define) + [f"lxc.namespace.share.{kind}={getattr(args, 'share_' + kind)}"
                                     for kind in ("net", "ipc", "uts") if getattr(args, "share_" + kind)]
    if args.uid is not None:
        overrides.append(f"lxc.init.uid={args.uid}")
    if args.gid is not None:
        overrides.append(f"lxc.init.gid={args.gid}")
    rcfile = args.rcfile_short or args.rcfile
    command = args.command
    if not command:
        values, _ = container.start_values(rcfile, overrides)
        cmd = values.get("lxc.execute.cmd")
        if not cmd:
            raise UsageError("missing command to execute (give -- COMMAND or set lxc.execute.cmd)")
        import shlex
        command = shlex.split(str(cmd))
    return container.execute(command, rcfile=rcfile, overrides=overrides)
