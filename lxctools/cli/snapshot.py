"""pyl-snapshot: make, list, restore and destroy snapshots of a container."""

from __future__ import annotations

HELP = """Snapshots of a stopped container, kept in LXCPATH/NAME/snaps/snapN.

  pyl-snapshot -n c1                  new snapshot snapN (first free N), a full copy
  pyl-snapshot -n c1 -c notes.txt     ... with a comment
  pyl-snapshot -n c1 -L [-C]          list: snap0 (LXCPATH/c1/snaps) 2026:11:27 20:08:31
  pyl-snapshot -n c1 -r snap0         restore c1 itself from snap0 (its snapshots stay)
  pyl-snapshot -n c1 -r snap0 -N c2   a new container c2 from snap0 (also: -r snap0 c2)
  pyl-snapshot -n c1 -d snap0         destroy one snapshot; -d ALL destroys every one

Differences from lxc-snapshot: --json with -L; the legacy LXCPATHsnaps folder is not read."""
NEEDS_NAME = False
OPTIONAL_NAME = True
NAME_STATES = "snapshot"
RCFILE = False


def add_arguments(parser) -> None:
    action = parser.add_mutually_exclusive_group()
    action.add_argument("-L", "--list", action="store_true", help="list the snapshots")
    action.add_argument("-r", "--restore", metavar="SNAP", help="restore snapshot SNAP")
    action.add_argument("-d", "--destroy", metavar="SNAP", help="destroy snapshot SNAP, or ALL")
    parser.add_argument("-c", "--comment", metavar="FILE", help="store FILE as the new snapshot's comment")
    parser.add_argument("-C", "--showcomments", action="store_true", help="with -L: print each comment")
    parser.add_argument("-N", "--newname", help="with -r: name of the restored container")
    parser.add_argument("--json", action="store_true", help="with -L: a JSON array")
    parser.add_argument("words", nargs="*", metavar="NAME [NEWNAME]", help="container name, then (with -r) the new name")


def run(args, ctx) -> int:
    import sys

    from lxctools import clone
    from lxctools.errors import UsageError
    from lxctools.names import validate_name

    words = list(args.words)
    name = args.name or (words.pop(0) if words else None)
    if name is None:
        raise UsageError("no container name specified", hint="give -n NAME or the name as first argument")
    validate_name(name)
    new_name = args.newname
    if words:
        if not args.restore or new_name or len(words) > 1:
            raise UsageError(f"unexpected argument '{words[0]}'")
        new_name = words[0]
    if args.comment and (args.list or args.restore or args.destroy):
        raise UsageError("-c is for making a snapshot")
    if (args.showcomments or args.json) and not args.list:
        raise UsageError("-C and --json go with -L")
    if new_name and not args.restore:
        raise UsageError("-N goes with -r")
    container = ctx.container(name)

    if args.list:
        infos = clone.list_snapshots(container)
        if args.json:
            import json  # here only: it imports re (~6 ms)
            sys.stdout.write(json.dumps([i.as_json() for i in infos], indent=2) + "\n")
        else:
            sys.stdout.write(clone.format_listing(infos, args.showcomments))
        return 0
    if args.restore:
        clone.restore_snapshot(container, args.restore, new_name)
        return 0
    if args.destroy:
        clone.destroy_snapshot(container, args.destroy)
        return 0
    clone.create_snapshot(container, args.comment)
    return 0
