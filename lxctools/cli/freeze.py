"""pyl-freeze: freeze all processes of a running container."""

from __future__ import annotations

HELP = """Freeze a running container (v2 cgroup.freeze or the v1 freezer; returns once FROZEN).
Freezing a stopped container is an error (exit 67)."""
NEEDS_NAME = True
NAME_STATES = "freeze"
RCFILE = "ignored"


def add_arguments(parser) -> None:
    pass


def run(args, ctx) -> int:
    ctx.container(args.name).freeze()
    return 0
