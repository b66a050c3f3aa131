"""pyl-start: start a container (system init)."""

from __future__ import annotations

HELP = """Start a container's init (lxc.init.cmd, default /sbin/init) in new namespaces.

  pyl-start -n c1            return once RUNNING (daemon mode is the default, as in LXC)
  pyl-start -n c1 -F         foreground: console on this terminal until the container stops
  pyl-start -n c1 -s lxc.cgroup2.memory.max=256M -- /bin/sh

Already running: says so on stderr and exits 0, as lxc-start does. -p writes the PID of the
supervisor (pyl-monitord, shared by the containers of one lxcpath) like lxc-start's monitor PID,
and the file is removed when the container stops, as lxc-start's is."""
NEEDS_NAME = True
NAME_STATES = "start"
TAKES_COMMAND = True


def add_arguments(parser) -> None:
    parser.add_argument("-d", "--daemon", action="store_true", help="run in the background (default)")
    parser.add_argument("-F", "--foreground", action="store_true", help="console on this terminal")
    add_config_arguments(parser)
    parser.add_argument("-p", "--pidfile", help="write the supervisor's PID to FILE (removed when the container stops)")
    parser.add_argument("-L", "--console-log", help="log the console to FILE (lxc.console.logfile)")
    parser.add_argument("-C", "--close-all-fds", action="store_true", help="accepted for LXC compatibility (always done)")


SHARED_NAMESPACES = ("net", "ipc", "uts")


def add_config_arguments(parser) -> None:
    """What pyl-start and pyl-execute both take to shape the config of this one start."""
    parser.add_argument("-f", dest="rcfile_short", metavar="FILE", help="same as --rcfile")
    for kind in SHARED_NAMESPACES:
        parser.add_argument(f"--share-{kind}", metavar="NAME|PID",
                            help=f"join the {kind} namespace of a running container (NAME, or "
                                 f"/path/to/container in another lxcpath) or process")
    parser.add_argument("-s", "--define", action="append", default=[], metavar="KEY=VAL",
                        help="override a config key (repeatable)")


def config_overrides(args) -> tuple[str | None, list[str]]:
    """(rcfile, -s overrides including the --share-* ones) from add_config_arguments' options."""
    from lxctools.errors import UsageError
    for pair in args.define:
        # The command line's own shape (64), said before the supervisor reads the config; a
        # key or value that is wrong stays a config error (78).
        if not pair.partition("=")[0].strip() or "=" not in pair:
            raise UsageError(f"-s {pair}: expected KEY=VALUE", hint="-s lxc.uts.name=web")
    overrides = list(args.define) + [f"lxc.namespace.share.{kind}={getattr(args, 'share_' + kind)}"
                                     for kind in SHARED_NAMESPACES if getattr(args, "share_" + kind)]
    return args.rcfile_short or args.rcfile, overrides


def run(args, ctx) -> int:
    import os
    import sys
    from lxctools.errors import UsageError
    if args.daemon and args.foreground:
        raise UsageError("-d and -F exclude each other")
    rcfile, overrides = config_overrides(args)
    if args.console_log:
        # The supervisor opens it, from its own working directory (/): a relative name is the
        # caller's.
        overrides.append(f"lxc.console.logfile={os.path.abspath(args.console_log)}")
    created_pidfile = False
    if args.pidfile:
        # Before the start, as lxc-start: a pid file that cannot be written is a refusal with
        # nothing started, not a traceback after the container runs. The supervisor writes it.
        try:
            try:
                fd = os.open(args.pidfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
                created_pidfile = True
            except FileExistsError:
                fd = os.open(args.pidfile, os.O_WRONLY | os.O_CLOEXEC)
        except OSError as err:
            from lxctools.errors import file_error
            raise file_error(err, f"the pid file '{args.pidfile}'") from None
        os.close(fd)
    container = ctx.container(args.name)
    try:
        started, pid = container.start(rcfile=rcfile, overrides=overrides, command=args.command,
                                       pidfile=args.pidfile)
    except BaseException:
        if created_pidfile:  # nothing started: leave no empty file behind
            try:
                if os.stat(args.pidfile).st_size == 0:
                    os.unlink(args.pidfile)
            except OSError:
                pass
        raise
    if not started:
        if not ctx.quiet:
            sys.stderr.write(f"{ctx.prog}: {args.name}: container is already running\n")
        return 0
    if args.foreground:
        from lxctools.cli.console import attach_console
        attach_console(ctx, container, tty=0, escape=None, until_stopped=True)
    return 0
