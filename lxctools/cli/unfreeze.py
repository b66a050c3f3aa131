"""pyl-unfreeze: thaw a frozen container."""

from __future__ import annotations

HELP = """Thaw a frozen container. Unfreezing a stopped container is a silent success, as in LXC."""
NEEDS_NAME = True
NAME_STATES = "unfreeze"
RCFILE = "ignored"


def add_arguments(parser) -> None:
    pass


def run(args, ctx) -> int:
    ctx.container(args.name).unfreeze()
    return 0
