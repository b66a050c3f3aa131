"""pyl-cgroup: read or write one cgroup file of a running container."""

from __future__ import annotations

HELP = """Read or write a file of a running container's cgroup.

  pyl-cgroup -n c1 memory.limit_in_bytes          print the value (v1 memory hierarchy)
  pyl-cgroup -n c1 memory.limit_in_bytes 256M     set it
  pyl-cgroup -n c1 memory.max 512M                cgroup v2 name: the unified hierarchy
  pyl-cgroup c1 cpuset.cpus                       the name may come first, as in LXC
A v1 key (CONTROLLER.FILE) goes to that controller's v1 hierarchy, a v2 key to the unified one; on a
hybrid host a key v1 lacks is tried in the unified hierarchy. Differences from lxc-cgroup: the value
is printed as the file holds it, without the extra blank line LXC adds; errors say which file and
why (not running: exit 67, unknown controller or file: 66, kernel refusal: 1 with its reason);
cgroup.procs and cgroup.threads are read-only here (a PID written there could be any host
process, which the container's stop would then kill; start processes inside with pyl-attach)."""
NEEDS_NAME = False
OPTIONAL_NAME = True  # -n NAME, or the first positional as in LXC (handled in run)
NAME_STATES = "cgroup"
RCFILE = False


def add_arguments(parser) -> None:
    parser.add_argument("items", nargs="*", metavar="KEY [VALUE]", help="cgroup file name, and a value to write")


def split_items(name: str | None, items: list[str]) -> tuple[str, str, str | None]:
    """(name, key, value) from -n and the positionals; UsageError for a wrong count."""
    from lxctools.errors import UsageError
    from lxctools.names import validate_name
    items = list(items)
    if name is None:
        if not items:
            raise UsageError("no container name specified", hint="give -n NAME or the name as first argument")
        name = validate_name(items.pop(0))
    if not items:
        raise UsageError("missing state object (a cgroup file name such as memory.limit_in_bytes)")
    if len(items) > 2:
        raise UsageError(f"too many arguments: {' '.join(items[2:])}", hint="quote a VALUE that has spaces")
    return name, items[0], items[1] if len(items) > 1 else None


def run(args, ctx) -> int:
    from lxctools.errors import PylError
    name, key, value = split_items(args.name, args.items)
    try:
        return _run(ctx, name, key, value)
    except PylError as err:
        if args.name is None:  # the driver only names the container given with -n
            err.message = f"{name}: {err.message}"
        raise


def _run(ctx, name: str, key: str, value: str | None) -> int:
    import sys
    text = ctx.container(name).cgroup_value(key, value)
    if text is not None:
        sys.stdout.write(text if text.endswith("\n") or not text else text + "\n")
    return 0
