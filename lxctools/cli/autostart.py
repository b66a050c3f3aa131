"""pyl-autostart: start, stop, reboot or kill the auto-started containers, in order."""

from __future__ import annotations

HELP = """Act on containers with lxc.start.auto = 1, group by group, in lxc.start.order.

  pyl-autostart                      start the stopped ones without lxc.group (the NULL group)
  pyl-autostart -g onboot,           group onboot, then the NULL group (what a boot script runs)
  pyl-autostart -a -A -s -t 5        shut down every running container (5 s, then kill)
  pyl-autostart -L -g onboot,        print what would be done: NAME DELAY per line

Order: lxc.start.order ascending, then name (reversed for -s and -k); after each start or reboot
wait lxc.start.delay seconds. Exit: 0; 1 if every container acted on failed, or if there are no
containers at all; 2 if some failed. Groups match exactly (lxc-autostart also matched a
container group that is a prefix of a requested one)."""
NEEDS_NAME = False
NAME_STATES = None
RCFILE = False


def add_arguments(parser) -> None:
    from lxctools.cli.driver import seconds
    action = parser.add_mutually_exclusive_group()
    action.add_argument("-r", "--reboot", action="store_true", help="reboot the running ones")
    action.add_argument("-s", "--shutdown", action="store_true", help="shut down the running ones")
    action.add_argument("-k", "--kill", action="store_true", help="kill the running ones")
    parser.add_argument("-L", "--list", action="store_true", help="only print what would be done")
    parser.add_argument("-a", "--all", action="store_true", help="ignore groups")
    parser.add_argument("-A", "--ignore-auto", action="store_true", help="ignore lxc.start.auto")
    parser.add_argument("-g", "--groups", action="append", default=[], metavar="GROUPS",
                        help="comma-separated groups; an empty one is the NULL group (repeatable)")
    parser.add_argument("-t", "--timeout", type=seconds, default=60.0, help="seconds before -s kills (default 60)")


def run(args, ctx) -> int:
    import sys

    from lxctools.autostart import Action, parse_groups, run_autostart

    action = (Action.REBOOT if args.reboot else Action.SHUTDOWN if args.shutdown
              else Action.KILL if args.kill else Action.START)
    groups, warnings = parse_groups(args.groups)
    if args.all and args.groups:
        warnings.append("Specifying -a (all) with -g (groups) doesn't make sense. All option overrides")
    if not ctx.quiet:
        for warning in warnings:
            sys.stderr.write(f"{ctx.prog}: {warning}\n")
    return run_autostart(ctx.layout, action, groups=groups or None, all_groups=args.all,
                         ignore_auto=args.ignore_auto, timeout=args.timeout, list_only=args.list,
                         quiet=ctx.quiet)
