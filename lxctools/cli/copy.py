"""pyl-copy: copy, snapshot-clone, rename or start an ephemeral clone of a container."""

from __future__ import annotations

HELP = """Copy a container: a full copy, an overlay snapshot clone, a rename, or an ephemeral clone.

  pyl-copy -n c1 -N c2              full copy (new hostname, new MACs, new /etc/hostname)
  pyl-copy -n c1 -N c2 -s           overlay clone: c1's rootfs read-only below c2/overlay/delta
  pyl-copy -n c1 -N c2 -R           rename (stopped containers only)
  pyl-copy -n c1 -e                 ephemeral overlay clone c1_XXXXXX, started; gone once stopped
  pyl-copy -n c1 -e -- cat /etc/os-release   run a command in it, then stop (and remove) it

pyl-copy replaces lxc-copy and the old lxc-clone. Differences from lxc-copy: a running source is
refused unless -a (also for full copies); block backends, -L, -t (tmpfs), -m and clone hooks are
not supported; -B dir of an overlay clone is refused (copy the clone as a clone instead)."""
NEEDS_NAME = True
NAME_STATES = "copy"
TAKES_COMMAND = True
RCFILE = False


def add_arguments(parser) -> None:
    parser.add_argument("-N", "--newname", help="name of the copy (with -e: default NAME_XXXXXX)")
    parser.add_argument("-p", "--newpath", help="lxcpath for the copy (default: -P)")
    task = parser.add_argument_group("task (the last one given wins, as in lxc-copy)")
    task.add_argument("-s", "--snapshot", dest="task", action="append_const", const="snapshot",
                      help="copy-on-write clone (overlay for a dir-backed source)")
    task.add_argument("-R", "--rename", dest="task", action="append_const", const="rename",
                      help="rename the container")
    task.add_argument("-e", "--ephemeral", dest="task", action="append_const", const="ephemeral",
                      help="start an overlay clone that is destroyed when it stops")
    parser.add_argument("-a", "--allowrunning", action="store_true", help="allow copying a running container")
    parser.add_argument("-B", "--backingstorage", choices=["dir", "overlay", "overlayfs"],
                        help="storage of the copy")
    parser.add_argument("-K", "--keepname", action="store_true", help="keep the hostname")
    parser.add_argument("-M", "--keepmac", action="store_true", help="keep the MAC addresses")
    parser.add_argument("-D", "--keepdata", action="store_true", help="with -e: keep the clone after it stops")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("-d", "--daemon", action="store_true", help="with -e: run in the background (default)")
    mode.add_argument("-F", "--foreground", action="store_true", help="with -e: console on this terminal")


def run(args, ctx) -> int:
    import os
    import sys

    from lxctools import clone
    from lxctools.errors import UsageError

    task = (args.task or ["copy"])[-1]
    source = ctx.container(args.name)
    if task != "ephemeral" and not args.newname:
        raise UsageError("no new name given (-N)", hint=f"{ctx.prog} -n {args.name} -N NEWNAME")
    if task != "ephemeral" and (args.keepdata or args.foreground or args.daemon or args.command):
        raise UsageError("-D, -d, -F and a command are for ephemeral clones (-e)")
    if task == "rename":
        if args.newpath and os.path.abspath(args.newpath) != os.path.abspath(ctx.layout.lxcpath_str):
            raise UsageError("-R renames inside one lxcpath; -p is not allowed with it")
        clone.rename_container(source, args.newname, keep_name=args.keepname)
        return 0
    newpath = args.newpath or None
    request = clone.CopyRequest(
        snapshot=task in ("snapshot", "ephemeral") and args.backingstorage != "dir",
        backing=args.backingstorage, keep_name=args.keepname, keep_mac=args.keepmac,
        allow_running=args.allowrunning, ephemeral=task == "ephemeral" and not args.keepdata)
    if task != "ephemeral":
        clone.copy_container(source, args.newname, newpath, request)
        return 0

    new_name = args.newname or clone.ephemeral_name(args.name)
    copy = clone.copy_container(source, new_name, newpath, request)
    if not ctx.quiet:
        sys.stdout.write(f"Created {copy.name} as clone of {args.name}\n")
        sys.stdout.flush()
    return clone.run_ephemeral(copy, command=args.command, foreground=args.foreground,
                               console=(lambda c: _console(ctx, c)) if args.foreground else None)


def _console(ctx, container) -> None:
    from lxctools.cli.console import attach_console
    attach_console(ctx, container, tty=0, escape=None, until_stopped=True)
