"""pyl-create: create a container from a template."""

from __future__ import annotations

HELP = """Create a container from a template (LXC's template protocol: LXC templates work unchanged).

  pyl-create -n c1 -t busybox
  pyl-create -n web -t local -- --tarball /srv/images/web.tar.gz
  pyl-create -n c2 -t none -f my.conf        (you bring the rootfs)

  pyl-create -n x -t busybox -- --help   (the template's own options; creates nothing)

Differences from lxc-create: the stored config is TOML (config.toml) using LXC's key names;
-f also takes a TOML file; -t NAME looks in pyl's templates/ first, then LXC's; -- --help
shows the template's help without creating a container."""
NEEDS_NAME = True
NAME_STATES = None
TAKES_COMMAND = True
RCFILE = False


def add_arguments(parser) -> None:
    arg = parser.add_argument("-t", "--template", help="template name (busybox, local, none) or path")
    arg.completer = _complete_templates
    parser.add_argument("-f", "--config", help="initial config file (LXC or TOML format)")
    parser.add_argument("-B", "--bdev", default="dir", choices=["dir", "none"], help="backing store (dir)")
    parser.add_argument("--dir", help="rootfs location (absolute path; default LXCPATH/NAME/rootfs)")


def _complete_templates(prefix: str, **_: object) -> list[str]:
    from lxctools.container import available_templates
    return [t for t in available_templates() + ["none"] if t.startswith(prefix)]


def run(args, ctx) -> int:
    from lxctools.errors import UsageError
    if not args.template:
        raise UsageError("a template must be specified (-t)", hint='use "-t none" for a container without a rootfs template')
    if {"-h", "--help"} & set(args.command or []):
        # `pyl-create -t busybox -- --help`: the template's options, and no container (the
        # template prints its usage and exits 0, which would leave one with an empty rootfs)
        from lxctools.container import template_help
        return template_help(args.template)
    ctx.container(args.name).create(template=args.template, config_file=args.config, backend=args.bdev,
                                    rootfs_dir=args.dir, template_args=args.command or [], quiet=args.quiet)
    return 0
