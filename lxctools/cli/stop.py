"""pyl-stop: stop, reboot or kill a container."""

from __future__ import annotations

HELP = """Stop a container: send lxc.signal.halt (SIGPWR by default), wait -t seconds, then kill.

  pyl-stop -n c1            clean shutdown, up to 60 s, then SIGKILL
  pyl-stop -n c1 -k         kill at once
  pyl-stop -n c1 -r         reboot (lxc.signal.reboot); the container comes back
Exit: 0 stopped, 2 not running, 66 no such container (lxc-stop says 2 for both).
Differs from lxc-stop: it returns once the container's processes and cgroups are gone, without
waiting for the kernel to free its network namespace; the veth's host end goes with that a few
ms later (the supervisor makes sure of it, and frees the address only then)."""
NEEDS_NAME = True
NAME_STATES = "stop"
RCFILE = "ignored"


def add_arguments(parser) -> None:
    from lxctools.cli.driver import seconds
    parser.add_argument("-r", "--reboot", action="store_true", help="reboot the container")
    parser.add_argument("-W", "--nowait", action="store_true", help="send the signal and return")
    parser.add_argument("-t", "--timeout", type=seconds, default=None, help="seconds to wait (-1 forever)")
    parser.add_argument("-k", "--kill", action="store_true", help="kill at once")
    parser.add_argument("--nokill", action="store_true", help="do not kill after the timeout")
    parser.add_argument("--nolock", action="store_true", help="accepted for LXC compatibility")


def run(args, ctx) -> int:
    from lxctools.errors import UsageError
    if args.kill and args.nokill:
        raise UsageError("-k and --nokill exclude each other")
    if args.kill and args.reboot:
        raise UsageError("-k and -r exclude each other")
    if args.kill and args.timeout not in (None, 0):
        raise UsageError("-k doesn't allow timeouts")
    if args.nolock and not args.kill:
        raise UsageError("--nolock needs -k")
    timeout = 60.0 if args.timeout is None else args.timeout
    ctx.container(args.name).stop(kill=args.kill, timeout=timeout, wait=not args.nowait,
                                  reboot=args.reboot, nokill=args.nokill)
    return 0
