"""pyl-wait: wait for a container to reach a state."""

from __future__ import annotations

HELP = """Wait until the container is in one of the states, e.g. -s 'RUNNING|FROZEN'.
-t SECONDS: give up after that long (exit 76); -1 (default) waits forever; 0 checks once.
Unlike lxc-wait, a timeout is exact (not rounded to seconds) and has its own exit code."""
NEEDS_NAME = True
NAME_STATES = "any"
RCFILE = "ignored"


def add_arguments(parser) -> None:
    from lxctools.cli.driver import seconds
    arg = parser.add_argument("-s", "--state", required=True, help="states separated by |")
    arg.completer = lambda prefix, **_: [s for s in ("STOPPED", "STARTING", "RUNNING", "STOPPING", "ABORTING",
                                                      "FREEZING", "FROZEN", "THAWED") if s.startswith(prefix.upper())]
    parser.add_argument("-t", "--timeout", type=seconds, default=-1, help="seconds (-1: forever)")


def run(args, ctx) -> int:
    from lxctools.errors import UsageError
    from lxctools.state import parse_states
    try:
        states = parse_states(args.state)
    except ValueError as err:
        raise UsageError(str(err)) from None
    timeout = None if args.timeout < 0 else args.timeout
    ctx.container(args.name).wait(states, timeout)
    return 0
