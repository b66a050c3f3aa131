"""pyl-update-config: convert configs between LXC's format and pyl's TOML, and modernise keys."""

from __future__ import annotations

HELP = """Convert a container config between LXC format and TOML, or rewrite legacy LXC keys.

  pyl-update-config -c /var/lib/lxc/c1/config --to toml          print the TOML version
  pyl-update-config -c /var/lib/lxc/c1/config --to toml -O config.toml
  pyl-update-config -c old.conf                 rewrite legacy keys in place (keeps old.conf.backup)
  pyl-update-config -n c1 --to lxc              print a pyl container's config in LXC format"""
NEEDS_NAME = False
OPTIONAL_NAME = True
NAME_STATES = None
RCFILE = False
NAME_HELP = "a pyl container whose config to read (instead of -c)"


def add_arguments(parser) -> None:
    parser.add_argument("-c", "--config", help="config file to read")
    parser.add_argument("--to", choices=["toml", "lxc"], help="output format")
    parser.add_argument("-O", "--output", help="write to FILE (atomically) instead of stdout")


def run(args, ctx) -> int:
    import os
    import sys
    from lxctools.errors import UsageError
    from lxctools.config.convert import convert_file, update_legacy_file
    path = args.config
    if path is None and args.name:
        found = ctx.container(args.name).config_path
        if found is None:
            from lxctools.errors import NotFoundError
            raise NotFoundError("container does not exist")
        path = str(found)
    if path is None:
        raise UsageError("give -c FILE or -n NAME")
    if args.to is None:
        update_legacy_file(path)
        return 0
    text = convert_file(path, args.to)
    if args.output and _is_device(args.output):
        # -O /dev/null, a FIFO: written to, as `>` would; the rename below would put a regular
        # file in place of the node (as root: /dev/null itself)
        try:
            with open(args.output, "w") as f:
                f.write(text)
        except OSError as err:
            from lxctools.errors import file_error
            raise file_error(err, f"'{args.output}' for writing") from None
    elif args.output:
        tmp = f"{args.output}.tmp{os.getpid()}"
        try:
            with open(tmp, "w") as f:
                f.write(text)
            os.rename(tmp, args.output)
        except OSError as err:
            from lxctools.errors import file_error
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise file_error(err, f"'{args.output}' for writing") from None
    else:
        sys.stdout.write(text)
    return 0


def _is_device(path: str) -> bool:
    """A character device or FIFO (what `>` writes into); a block device is refused, not overwritten."""
    import os
    import stat
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    if stat.S_ISBLK(mode) or stat.S_ISSOCK(mode):
        from lxctools.errors import UsageError
        raise UsageError(f"-O {path}: neither a regular file nor a character device or FIFO")
    return stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)
