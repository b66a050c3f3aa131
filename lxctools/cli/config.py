"""pyl-config: show pyl's system configuration, and list the container config keys."""

from __future__ import annotations

HELP = """Print pyl's system configuration (like lxc-config).

  pyl-config -l                 list the system keys
  pyl-config lxc.lxcpath        print one value
  pyl-config --keys             every container config key pyl knows, with help
  pyl-config --keys lxc.net.0.  keys with that prefix
System config: /etc/pyl/pyl.toml (root) or $XDG_CONFIG_HOME/pyl/pyl.toml; PYL_LXCPATH overrides
lxc.lxcpath. Unlike lxc-config, a key must be spelled in full (no prefix match)."""
NEEDS_NAME = False
NAME_STATES = None
RCFILE = False
LOG_OPTIONS = False

SYSTEM_KEYS = {
    "lxc.lxcpath": "lxcpath",
    "lxc.default_config": "default_config",
    "lxc.default_bridge": "default_bridge",
    "lxc.rundir": "rundir",
}


def add_arguments(parser) -> None:
    parser.add_argument("-l", "--list", action="store_true", help="list the system keys")
    parser.add_argument("--keys", action="store_true", help="list container config keys (optionally by prefix)")
    parser.add_argument("--markdown", action="store_true", help="with --keys: a markdown table (docs)")
    arg = parser.add_argument("key", nargs="?", help="system key to print (or prefix with --keys)")
    arg.completer = lambda prefix, **_: [k for k in SYSTEM_KEYS if k.startswith(prefix)]


def run(args, ctx) -> int:
    import sys
    from lxctools.errors import NotFoundError
    out = sys.stdout
    if args.keys:
        from lxctools.config import keys
        if args.markdown:
            out.write(keys.render_key_docs())
            return 0
        import re
        prefix = re.sub(r"\.\d+(?=\.|$)", ".<N>", args.key or "")  # lxc.net.0. -> lxc.net.<N>.
        for spec in keys.all_specs():
            if prefix and not spec.name.startswith(prefix):
                continue
            out.write(f"{spec.name:<36} {spec.help}\n")
        return 0
    if args.list or not args.key:
        out.write("".join(f"{k}\n" for k in SYSTEM_KEYS))
        return 0
    if args.key not in SYSTEM_KEYS:
        raise NotFoundError(f"unknown configuration item: {args.key}", hint="pyl-config -l lists them")
    from lxctools.config.system import load_system_config
    from lxctools.paths import default_rundir
    system = load_system_config()
    value = getattr(system, SYSTEM_KEYS[args.key], None)
    if args.key == "lxc.rundir" and not value:
        value = default_rundir()
    if args.key == "lxc.lxcpath" and args.lxcpath:
        value = args.lxcpath
    out.write(f"{value}\n" if value not in (None, "") else f"{args.key} is not set.\n")
    return 0
