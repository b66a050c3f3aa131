"""pyl-monitor: print container state changes as they happen."""

from __future__ import annotations

HELP = """Print every state change of containers whose name matches REGEX (anchored, default .*),
including containers started after pyl-monitor began:
  'c1' changed state to [RUNNING]
  'c1' exited with status [0]
--json prints one JSON object per line instead. Runs until interrupted."""
NEEDS_NAME = False
OPTIONAL_NAME = True
NAME_IS_PATTERN = True
NAME_STATES = None
RCFILE = False
NAME_HELP = "regular expression the names must match (anchored; default .*)"


def add_arguments(parser) -> None:
    parser.add_argument("--json", action="store_true", help="JSON lines")
    parser.add_argument("-Q", "--quit", action="store_true", help="ask the supervisor to exit if idle")


def run(args, ctx) -> int:
    import json
    import re
    import sys
    from lxctools.errors import UsageError
    from lxctools.monitor.client import connect, try_connect
    pattern = args.name or ".*"
    try:
        re.compile(pattern)
    except re.error as err:
        raise UsageError(f"invalid regular expression '{pattern}': {err}") from None
    if args.quit:
        conn = try_connect(ctx.layout)
        if conn is not None:
            with conn:
                conn.request({"op": "quit"})
        return 0
    with connect(ctx.layout) as conn:
        conn.request({"op": "subscribe", "regex": pattern})
        out = sys.stdout
        while True:
            event = conn.receive()
            if args.json:
                out.write(json.dumps(event) + "\n")
            elif event.get("event") == "state":
                out.write(f"'{event['name']}' changed state to [{event['state']}]\n")
            elif event.get("event") == "exit":
                out.write(f"'{event['name']}' exited with status [{event['status']}]\n")
            out.flush()
