"""pyl-destroy: remove a container and everything it owned."""

from __future__ import annotations

HELP = """Destroy a container: its folder, its rootfs and nothing else (never follows a symlink out).

  pyl-destroy -n c1        refuse if running
  pyl-destroy -n c1 -f     stop it (kill) first
  pyl-destroy -n c1 -s     also destroy its snapshots and snapshot clones

A snapshot clone's own snapshots go with it under -s (lxc-destroy -s refuses a clone that has
some). Without -s, only clones that still exist count: a stale lxc_snapshots entry is ignored."""
NEEDS_NAME = True
NAME_STATES = "any"
RCFILE = "ignored"


def add_arguments(parser) -> None:
    parser.add_argument("-f", "--force", action="store_true", help="stop a running container first")
    parser.add_argument("-s", "--snapshots", action="store_true", help="destroy snapshots and snapshot clones too")


def run(args, ctx) -> int:
    ctx.container(args.name).destroy(force=args.force, snapshots=args.snapshots)
    return 0
