# PYTHON_ARGCOMPLETE_OK
"""The one driver every pyl-* tool runs through: common options, completion, errors -> exit codes.

A tool is a module in lxctools.cli exposing:
  HELP: str                         one-line description (and LXC differences, if any)
  NEEDS_NAME: bool                  -n NAME or first positional is required
  NAME_STATES: str | None           key of lxctools.state.ALLOWED used to filter name completion
  TAKES_COMMAND: bool (optional)    everything after `--` is a command (attach, execute...)
  add_arguments(parser) -> None
  run(args, ctx) -> int
Tools are imported lazily by name, so a command only pays for what it uses.
"""

from __future__ import annotations

import errno
import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse

from lxctools import __version__
from lxctools.errors import PERMISSION_ERRNOS, ExitCode, PylError, UsageError

# argparse.SUPPRESS's value, spelled out: the fast path declares arguments without argparse.
SUPPRESS = "==SUPPRESS=="


MAX_SECONDS = 2 ** 31 - 1  # ~68 years: any longer is a typo, and the kernel's timers overflow


def seconds(text: str) -> float:
    """The type of every -t/-d duration: a finite number of seconds (negative: forever, as
    LXC's -1). inf, nan and 1e400 would reach a select() as a timeout it cannot take (the
    supervisor's event loop among them), so they are a usage error here."""
    value = float(text)
    if not -MAX_SECONDS <= value <= MAX_SECONDS:  # also false for nan
        raise ValueError(text)
    return value


MAX_ID = 2 ** 32 - 2  # (uid_t)-1 means "unchanged" to the kernel's set*id calls


def check_ids(uid: int | None, gid: int | None) -> None:
    """-u/-g of pyl-attach and pyl-execute: a usage error (64) for an id no process can have,
    said as the option the user typed."""
    for flag, value in (("-u", uid), ("-g", gid)):
        if value is not None and not 0 <= value <= MAX_ID:
            raise UsageError(f"{flag} {value}: an id is between 0 and {MAX_ID}")


def import_module(name: str):
    """importlib.import_module without importing the importlib package (~0.5 ms per command)."""
    __import__(name)
    return sys.modules[name]


# tool name -> module under lxctools.cli. Order is the order `pyl --help` lists them.
TOOLS: dict[str, str] = {
    "create": "create", "destroy": "destroy", "ls": "ls", "info": "info", "config": "config",
    "checkconfig": "checkconfig", "update-config": "update_config",
    "start": "start", "stop": "stop", "execute": "execute", "console": "console",
    "monitor": "monitor", "wait": "wait",
    "attach": "attach", "freeze": "freeze", "unfreeze": "unfreeze", "ps": "ps", "top": "top",
    "cgroup": "cgroup", "netstat": "netstat", "device": "device",
    "copy": "copy", "snapshot": "snapshot", "autostart": "autostart", "net": "net",
}


def _Parser(**kwargs):
    """argparse.ArgumentParser whose errors are PylErrors (one line, exit 64), imported only
    when the fast path declined."""
    import argparse

    class Parser(argparse.ArgumentParser):
        def error(self, message: str) -> None:  # argparse would exit 2 with usage
            raise UsageError(message, hint=f"see {self.prog} --help")

        def _get_values(self, action, arg_strings):
            # `-n--`, `--name=--`: argparse (3.11) drops that '--' as if it ended the options
            # and stores [] where a string belongs (a traceback in the tool reading it); the
            # value is '--', as the fast path parses it.
            if action.nargs is None and arg_strings == ["--"] and action.option_strings:
                value = self._get_value(action, "--")
                self._check_value(action, value)
                return value
            return super()._get_values(action, arg_strings)

    return Parser(**kwargs)


class Context:
    """What every tool gets besides its arguments: resolved paths and output switches."""

    __slots__ = ("prog", "layout", "quiet", "debug")

    def __init__(self, prog: str, layout, quiet: bool, debug: bool) -> None:
        self.prog = prog
        self.layout = layout
        self.quiet = quiet
        self.debug = debug

    def container(self, name: str):
        from lxctools.container import Container
        return Container(name, self.layout)


def _formatter(prog: str):
    # An explicit width: argparse would otherwise import shutil (and lzma, bz2...) to ask for
    # the terminal size every time a parser is built, help or not.
    import argparse
    try:
        width = os.get_terminal_size(2).columns - 2
    except OSError:
        width = 78
    return argparse.RawDescriptionHelpFormatter(prog, width=max(40, width))


def _complete_names(prefix: str, parsed_args: argparse.Namespace, **_: object) -> list[str]:
    from lxctools.cli.complete import container_names
    return container_names(parsed_args, prefix)


def build_parser(tool: str, module, factory=None):
    """The tool's parser: argparse's, or (factory=MiniParser) the same declarations recorded
    for the fast path that does not import argparse."""
    prog = f"pyl-{tool}"
    if factory is None:
        parser = _Parser(prog=prog, description=module.HELP, epilog=getattr(module, "EPILOG", None),
                         formatter_class=_formatter)
    else:
        parser = factory()
    common = parser.add_argument_group("common options")
    if module.NEEDS_NAME or getattr(module, "OPTIONAL_NAME", False):
        arg = common.add_argument("-n", "--name", help=getattr(
            module, "NAME_HELP", "container name (or give it as the first argument)"))
        arg.completer = _complete_names  # type: ignore[attr-defined]
    arg = common.add_argument("-P", "--lxcpath", help="container folder root (default: $PYL_LXCPATH, "
                              "the system config, /var/lib/pyl for root)")
    arg.completer = _complete_dirs  # type: ignore[attr-defined]
    if getattr(module, "LOG_OPTIONS", True):  # lxc-config has its own -l (list)
        common.add_argument("-o", "--logfile", help="write a log to FILE ('-' for stderr)")
        common.add_argument("-l", "--logpriority", help="log level: TRACE DEBUG INFO NOTICE WARN ERROR CRIT ALERT FATAL")
    else:
        parser.set_defaults(logfile=None, logpriority=None)
    common.add_argument("-q", "--quiet", action="store_true", help="print no error or info lines")
    rcfile = getattr(module, "RCFILE", True)
    if rcfile == "ignored":
        # LXC's common option, taken so that scripts written for lxc-* keep working; said
        # plainly, since the tool acts on the running container or its stored config.
        common.add_argument("--rcfile", help="accepted for LXC compatibility and ignored "
                            "(the stored or running config is used)")
    elif rcfile:
        common.add_argument("--rcfile", help="use FILE as the container's config instead of the stored one")
    common.add_argument("--debug", action="store_true", help="show a traceback on internal errors")
    common.add_argument("--version", action="version", version=__version__)
    module.add_arguments(parser)
    parser.set_defaults(_name_states=getattr(module, "NAME_STATES", None))
    if module.NEEDS_NAME and not getattr(module, "NO_POSITIONAL_NAME", False):
        # argparse hides a help only if it *is* argparse.SUPPRESS (an identity test): an equal
        # string of ours would be printed, "NAME ==SUPPRESS==" in every tool's --help.
        hidden = SUPPRESS
        if factory is None:
            import argparse  # loaded already: the parser above is argparse's
            hidden = argparse.SUPPRESS
        arg = parser.add_argument("positional_name", nargs="?", metavar="NAME", help=hidden)
        arg.completer = _complete_names  # type: ignore[attr-defined]
    return parser


def _complete_dirs(prefix: str, **_: object) -> list[str]:
    from lxctools.cli.complete import directories
    return directories(prefix)


def _split_command(argv: list[str]) -> tuple[list[str], list[str] | None]:
    if "--" in argv:
        i = argv.index("--")
        return argv[:i], argv[i + 1:]
    return argv, None


def fill_closed_stdio() -> None:
    """Open /dev/null on fd 0, 1 or 2 if the caller closed it (cron's `<&-`, `>&-`): otherwise
    the next file we open takes that number, a lock file as "stdout", or the pipe a supervisor
    reports on as "stderr" (where the child's dup2 of its log over fd 2 would close it). The
    std streams Python made at start-up stay None for a closed fd: output to it is still dropped."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            opened = os.open(os.devnull, os.O_RDWR)  # the lowest free number: this one
            if opened != fd:
                os.dup2(opened, fd)
                os.close(opened)
            # Python left sys.stdout (or stderr) None for the closed fd: every tool's write
            # would be an AttributeError, exit 70. A stream over /dev/null drops it instead.
            if fd == 1 and sys.stdout is None:
                sys.stdout = open(1, "w", closefd=False)
            elif fd == 2 and sys.stderr is None:
                sys.stderr = open(2, "w", closefd=False)


def run_tool(tool: str, argv: list[str] | None = None) -> int:
    fill_closed_stdio()
    prog = f"pyl-{tool}"
    argv = sys.argv[1:] if argv is None else argv
    debug = "--debug" in argv
    name: str | None = None
    try:
        module = import_module(f"lxctools.cli.{TOOLS[tool]}")
        own, command = _split_command(argv)
        if command is not None and not getattr(module, "TAKES_COMMAND", False):
            own, command = argv, None  # tools without a command keep `--` for argparse (ls -- REGEX)
        args = None
        if "_ARGCOMPLETE" in os.environ:
            from lxctools.cli.fastcomplete import try_complete
            if try_complete(tool, module):  # a container name: answered without argparse
                return 0
        else:
            from lxctools.cli.fastargs import MiniParser
            args = build_parser(tool, module, MiniParser).parse(own)
        if args is None:  # help, errors, completion, anything unusual: argparse itself
            parser = build_parser(tool, module)
            if "_ARGCOMPLETE" in os.environ:
                import argcomplete
                argcomplete.autocomplete(parser, always_complete_options="long")
            args = parser.parse_args(own)
        args.command = command
        name = _resolve_name(module, args)
        return _run(tool, module, args, name)
    except PylError as err:
        if not ("-q" in argv or "--quiet" in argv):
            message = err.message
            if name and message.startswith(f"{name}: "):
                message = message[len(name) + 2:]  # named by the library too: not "a: a: cannot..."
            who = f"{prog}: {name}: " if name else f"{prog}: "
            # One line each, whatever the user typed: argparse and the tools quote arguments
            # ('a\nb', an escape sequence) in their messages.
            from lxctools.names import shown
            sys.stderr.write(f"{who}{shown(message)}\n")
            if err.hint:
                sys.stderr.write(f"{prog}: hint: {shown(err.hint)}\n")
        return int(err.exit_code)
    except KeyboardInterrupt as err:
        # Ctrl-C, or SIGTERM/SIGHUP raised as Terminated where an operation must clean up
        return 128 + getattr(err, "signum", 2)
    except BrokenPipeError:
        # `pyl-ls | head`: the reader left; not an error worth a traceback.
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 0
    except OSError as err:
        if err.errno not in _ENVIRONMENT_ERRNOS and err.errno not in PERMISSION_ERRNOS or debug:
            return _internal_error(prog, debug)
        # The host, not pyl: a full disk (the output redirected to one included), a read-only
        # file system, an I/O error. Said in one line, as any other failure.
        who = f"{prog}: {name}: " if name else f"{prog}: "
        try:
            from lxctools.names import shown
            sys.stderr.write(f"{who}{err.strerror}" + (f": {shown(str(err.filename))}" if err.filename else "") + "\n")
        except OSError:
            pass
        return int(ExitCode.PERMISSION if err.errno in PERMISSION_ERRNOS else ExitCode.FAILURE)
    except Exception:
        return _internal_error(prog, debug)


# OSErrors that are the host's condition, not a bug (exit 1); errors.PERMISSION_ERRNOS are 77.
_ENVIRONMENT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS})


def _internal_error(prog: str, debug: bool) -> int:
    """For an unexpected exception being handled: re-raise it with --debug, else say so in two lines."""
    if debug:
        raise  # the exception being handled by the caller
    import traceback
    sys.stderr.write(f"{prog}: internal error (a bug in pyl); rerun with --debug for the traceback\n")
    sys.stderr.write("".join(traceback.format_exception_only(*sys.exc_info()[:2])))
    return int(ExitCode.BUG)


def finish(code: int) -> None:
    """Exit with CODE now, without the interpreter's teardown: module and object cleanup that a
    process about to end has no use for, ~2 ms of every command here (`python -c pass` 10.3 ms,
    8.2 ms ending in os._exit). What of it matters is done here: stdout and stderr flushed.
    pyl keeps no other buffered file, thread or atexit handler by the time a tool returns."""
    for stream in (sys.stdout, sys.stderr):
        if stream is None:
            continue  # started with that fd closed (cron)
        try:
            stream.flush()
        except BrokenPipeError:
            pass  # the reader left (`pyl-ls | head`): as during the run, not an error
        except (OSError, ValueError) as err:
            if stream is sys.stdout and sys.stderr is not None:
                try:
                    prog = os.path.basename(sys.argv[0]) or "pyl"
                    sys.stderr.write(f"{prog}: cannot write the output: {getattr(err, 'strerror', err)}\n")
                    sys.stderr.flush()
                except (OSError, ValueError):
                    pass
                code = code or int(ExitCode.FAILURE)
    os._exit(code)


def _resolve_name(module, args: argparse.Namespace) -> str | None:
    needs = module.NEEDS_NAME
    name = getattr(args, "name", None)
    positional = getattr(args, "positional_name", None)
    if name is None and positional is not None:
        name = positional
    elif name is not None and positional is not None:
        raise UsageError(f"unexpected argument '{positional}' (the name was given with -n)")
    if needs and name is None:
        raise UsageError("no container name specified", hint="give -n NAME or the name as first argument")
    if name is not None and not getattr(module, "NAME_IS_PATTERN", False):
        from lxctools.names import validate_name
        validate_name(name)
    args.name = name
    return name


def make_layout(args: argparse.Namespace):
    from lxctools.config.system import load_system_config
    from lxctools.paths import Layout, default_rundir
    system = load_system_config()
    lxcpath = args.lxcpath or system.lxcpath
    lxcpath = os.path.abspath(str(lxcpath).rstrip("/") or "/")
    if len(os.fsencode(lxcpath)) >= 4096 or any(len(os.fsencode(part)) > 255 for part in lxcpath.split("/")):
        # ENAMETOOLONG from the first scandir or lock of every tool: said as the option typed
        from lxctools.names import shown
        raise UsageError(f"lxcpath '{shown(lxcpath)}' is too long (NAME_MAX 255, PATH_MAX 4096 bytes)")
    rundir = os.environ.get("PYL_RUNDIR") or getattr(system, "rundir", None) or default_rundir()
    if not os.path.isdir(rundir) and os.path.lexists(rundir):
        # Every lock and state file is under it: a file there would be a traceback in each.
        from lxctools.errors import NotFoundError
        raise NotFoundError(f"the run dir {rundir} is not a directory (PYL_RUNDIR, lxc.rundir)")
    return Layout(lxcpath=lxcpath, rundir=rundir)


def _run(tool: str, module, args: argparse.Namespace, name: str | None) -> int:
    from lxctools.log import log
    log.configure(f"pyl-{tool}", name, args.logfile, args.logpriority)
    ctx = Context(prog=f"pyl-{tool}", layout=make_layout(args), quiet=args.quiet, debug=args.debug)
    return int(module.run(args, ctx) or 0)


def multicall(argv: list[str] | None = None) -> int:
    """`pyl TOOL ARGS...` — the same tools under one entry point."""
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] not in ("-h", "--help", "--version", "--list"):
        return _multicall(argv)
    fill_closed_stdio()  # `pyl --list >&-` in a cron job, as for every tool
    try:
        return _multicall(argv)
    except BrokenPipeError:  # `pyl --help | head -1`
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 0


def _multicall(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        sys.stdout.write("usage: pyl TOOL [ARGS...]\n\ntools:\n")
        for tool, mod in TOOLS.items():
            try:
                sys.stdout.write(f"  {tool:<14}{import_module(f'lxctools.cli.{mod}').HELP.splitlines()[0]}\n")
            except ImportError:
                continue
        return 0
    if argv[0] == "--version":
        sys.stdout.write(f"{__version__}\n")
        return 0
    if argv[0] == "--list":
        sys.stdout.write("".join(f"pyl-{t}\n" for t in TOOLS))
        return 0
    tool = argv[0].removeprefix("pyl-")
    if tool not in TOOLS:
        from lxctools.names import shown
        sys.stderr.write(f"pyl: unknown tool '{shown(argv[0])}' (pyl --help lists them)\n")
        return int(ExitCode.USAGE)
    return run_tool(tool, argv[1:])
