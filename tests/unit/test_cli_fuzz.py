"""Every tool, any command line: a one-line error and a documented exit code, never a traceback,
never exit 70, and nothing changed under the lxcpath by a command that was refused.

The command lines are made from each tool's own declared options (the MiniParser records the
driver's add_argument calls) mixed with hostile values. Most examples run in this process through
the driver's entry (`run_tool`, `multicall`: what bin/pyl calls, minus its os._exit) with fds 0, 1
and 2 redirected as a fresh process would have them; a few run bin/pyl-TOOL as a real subprocess.

Nothing here may start a container or touch the host's network: a command line that could do so
(pyl-start, pyl-execute, pyl-autostart and pyl-copy -e that would get past their refusals,
pyl-net start/stop, a pyl-monitor or pyl-wait that would wait, a pyl-top that would loop) is
parsed as the driver would parse it and left out unless it must be refused before any of that.
Every path a command could write to is under the test's own temp dir.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from lxctools.cli.driver import TOOLS, build_parser, import_module, multicall, run_tool
from lxctools.cli.fastargs import MiniParser
from lxctools.errors import PylError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ALL_TOOLS = sorted(TOOLS)

# README "Exit codes" (70 is a bug, never an answer to a command line). 2 is pyl-stop's "not
# running" and pyl-autostart's "some failed".
DOCUMENTED = {0, 1, 2, 64, 65, 66, 67, 68, 71, 75, 76, 77, 78}

# ---- hostile values -----------------------------------------------------------------------------
# None is absolute outside the temp dir: the cwd is TMP/cwd/a/b/c, so '../x' and '../../x' stay in it.
NAMES = ["c1", "c2", "c3", "nope", "n1", "", "../x", "a/b", "-x", "x" * 300, "x" * 64, "x" * 65, "é",
         "日本語", "a\x01b", "\x1b[31m", "a\tb", "a\nb", "a\rb", "\x7f", ".", "..", ".hidden", "a b", "\u202e",
         "\udcff", "c1 ", "C1", "c1,c2", "c1,", ",", ".*", "(", "c[", "%s%n", "{}"]
NUMBERS = ["0", "1", "-1", "2", "99999999999999999999", "-99999999999999999999", "nan", "inf", "-inf",
           "1e400", "-1e400", "1e-400", "0x10", "1_000", " 1", "1.5", "-0", "4294967295", "4294967294",
           "2147483648", "-2147483649", "1e9", "０"]
WORDS = ["", "-", "--", "=", "a=b", "lxc.uts.name=x", "lxc.bogus=1", "=x", "lxc.net.0.type", "lxc.",
         "|", "RUNNING", "STOPPED", "RUNNING|FROZEN", "running", "|RUNNING", "toml", "lxc", "dir", "overlay",
         "busybox", "none", "local", "add", "del", "start", "stop", "status", "ALL", "snap0", "snap9",
         "memory.max", "cgroup.procs", "memory.limit_in_bytes", "../../etc/passwd", "lo", "CAP|bogus",
         "MOUNT|PID", "bogus", "^", "^b", "é", "n", "z", "TRACE", "debug", "10", "42"]
UNKNOWN = ["--bogus", "-Z", "--", "-", "--=", "---x", "--name", "-n", "-P", "--debug", "-q", "-h", "--help",
           "--version", "--rcfile", "-o", "-l", "--lxcpath=", "-nc1"]
# options whose value is a folder pyl may create things in: temp dir only
PATH_OPTIONS = {"-P", "--lxcpath", "-p", "--newpath", "--dir"}
# options whose value is a file pyl may write (or rename over): temp dir only, never a device
OUTPUT_OPTIONS = {"-o", "--logfile", "-O", "--output", "-L", "--console-log", "--pty-log", "--pidfile"}


class World:
    """TMP/lxc with stopped containers c1 (-t none), c2 (a small rootfs and a snapshot) and c3 (an
    LXC-format config with an unknown key), a run dir, files to name, and the pristine copy."""

    def __init__(self) -> None:
        self.tmp = tempfile.mkdtemp(prefix="pylfz-", dir="/tmp")
        self.lxcpath = os.path.join(self.tmp, "lxc")
        self.rundir = os.path.join(self.tmp, "run")
        self.pristine = os.path.join(self.tmp, "pristine")
        self.cwd = os.path.join(self.tmp, "cwd", "a", "b", "c")
        self.files = os.path.join(self.tmp, "files")
        os.makedirs(self.cwd)
        self.env = {"PYL_LXCPATH": self.lxcpath, "PYL_RUNDIR": self.rundir, "PYL_MONITOR_LINGER": "0",
                    "PYTHONDONTWRITEBYTECODE": "1"}
        self.saved_env = {k: os.environ.get(k) for k in self.env}
        self.saved_cwd = os.getcwd()
        os.environ.update(self.env)
        os.chdir(self.cwd)
        self._build()

    def _build(self) -> None:
        os.makedirs(self.rundir)
        for argv in (["-n", "c1", "-t", "none"], ["-n", "c2", "-t", "none"]):
            assert quiet_call(lambda: run_tool("create", argv)) == 0
        rootfs = os.path.join(self.lxcpath, "c2", "rootfs")
        for sub in ("bin", "etc", "sbin"):
            os.makedirs(os.path.join(rootfs, sub))
        with open(os.path.join(rootfs, "etc", "hostname"), "w") as f:
            f.write("c2\n")
        assert quiet_call(lambda: run_tool("snapshot", ["-n", "c2"])) == 0
        os.makedirs(os.path.join(self.lxcpath, "c3", "rootfs"))
        with open(os.path.join(self.lxcpath, "c3", "config"), "w") as f:
            f.write("lxc.uts.name = c3\nlxc.uts.nmae = typo\nlxc.rootfs.path = dir:/nonexistent-pylfz\n")
        os.makedirs(os.path.join(self.lxcpath, ".hidden"))
        with open(os.path.join(self.lxcpath, "stray-file"), "w") as f:
            f.write("not a container\n")
        shutil.copytree(self.lxcpath, self.pristine, symlinks=True)
        self.write_files()
        self.before = snapshot(self.lxcpath)

    def write_files(self) -> None:
        shutil.rmtree(self.files, ignore_errors=True)
        os.makedirs(os.path.join(self.files, "adir"))
        contents = {
            "good.conf": "lxc.uts.name = x\n",
            "legacy.conf": "lxc.utsname = x\nlxc.network.type = empty\n",
            "bad.conf": "lxc.uts.nmae = x\nnot a line\n",
            "bom.conf": "\ufefflxc.uts.name = x\n",
            "good.toml": '[lxc.uts]\nname = "x"\n',
            "bad.toml": "[lxc\nname = = x\n",
            "empty": "",
            "binary": "\x00\xff\xfe garbage \x00",
            "settings": "PYL_BRIDGE=pylfzbr0\nPYL_ADDR=nonsense\n",
        }
        for name, text in contents.items():
            with open(os.path.join(self.files, name), "w", errors="surrogateescape") as f:
                f.write(text)
        if os.geteuid() == 0:  # a /dev/null of our own: an output "atomically" renamed over it
            os.mknod(self.null, 0o666 | stat.S_IFCHR, os.makedev(1, 3))

    @property
    def null(self) -> str:
        return os.path.join(self.files, "null")

    @property
    def file_values(self) -> list[str]:
        names = ["good.conf", "legacy.conf", "bad.conf", "bom.conf", "good.toml", "bad.toml", "empty",
                 "binary", "settings", "adir", "missing", "adir/missing/x", "good.conf/x"]
        return [os.path.join(self.files, n) for n in names] + [
            os.path.join(self.lxcpath, "c1", "config.toml"), os.path.join(self.lxcpath, "c3", "config")]

    @property
    def path_values(self) -> list[str]:
        return [self.lxcpath, "", ".", "..", "../x", "a/b", "-x", "x" * 300, "é", "\udcff",
                os.path.join(self.tmp, "other"), os.path.join(self.files, "empty"),
                os.path.join(self.tmp, "missing", "deep"), self.lxcpath + "/", self.lxcpath + "//c1"]

    def reset(self) -> None:
        """Back to the pristine lxcpath and run dir, after a command that changed them."""
        shutil.rmtree(self.lxcpath)
        shutil.rmtree(self.rundir)
        os.makedirs(self.rundir)
        shutil.copytree(self.pristine, self.lxcpath, symlinks=True)
        self.write_files()
        self.before = snapshot(self.lxcpath)

    def close(self) -> None:
        os.chdir(self.saved_cwd)
        for key, value in self.saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        leaked = processes_mentioning(self.tmp)
        shutil.rmtree(self.tmp, ignore_errors=True)
        assert not leaked, f"processes left behind: {leaked}"


def snapshot(top: str) -> dict[str, tuple]:
    """Every name under TOP with its type, size and mtime: what a refused command must not change."""
    seen = {}
    for folder, dirs, files in os.walk(top):
        for name in dirs + files:
            path = os.path.join(folder, name)
            info = os.lstat(path)
            seen[os.path.relpath(path, top)] = (info.st_mode, info.st_size, info.st_mtime_ns)
    return seen


def processes_mentioning(text: str) -> list[int]:
    """PIDs (not ours) whose command line names TEXT: a supervisor this fuzz let start."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                if text.encode() in f.read():
                    found.append(int(entry))
        except OSError:
            continue
    return found


# ---- running a tool in this process, as bin/pyl would -----------------------------------------

class _Streams:
    """sys.stdout/sys.stderr over fds 1 and 2, made once: a module that bound sys.stderr at import
    (autostart's defaults) keeps writing to fd 2, which each run points at its own file."""
    out = err = None


def _streams() -> tuple:
    if _Streams.out is None:
        _Streams.out = open(1, "w", encoding="utf-8", errors="surrogateescape", closefd=False)
        _Streams.err = open(2, "w", encoding="utf-8", errors="backslashreplace", closefd=False)
    return _Streams.out, _Streams.err


def captured(fn) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of fn() run with stdin /dev/null and fds 1, 2 captured."""
    out, err = _streams()
    files = [tempfile.TemporaryFile(), tempfile.TemporaryFile()]
    saved = [os.dup(0), os.dup(1), os.dup(2)]
    saved_sys = sys.stdin, sys.stdout, sys.stderr
    devnull = os.open(os.devnull, os.O_RDONLY)
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os.dup2(devnull, 0)
    os.dup2(files[0].fileno(), 1)
    os.dup2(files[1].fileno(), 2)
    sys.stdout, sys.stderr = out, err
    try:
        code = fn()
    except SystemExit as exc:  # argparse's --help and --version
        code = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
    finally:
        for stream in (out, err):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        for fd, copy in enumerate(saved):
            os.dup2(copy, fd)
            os.close(copy)
        os.close(devnull)
        sys.stdin, sys.stdout, sys.stderr = saved_sys
        _reset_process_state()
    texts = []
    for f in files:
        f.seek(0)
        texts.append(f.read().decode("utf-8", "replace"))
        f.close()
    return int(code), texts[0], texts[1]


def quiet_call(fn) -> int:
    code, _out, err = captured(fn)
    assert "Traceback" not in err, err
    return code


def _reset_process_state() -> None:
    """What a fresh process would not have: the log opened by an earlier run's -o/-l."""
    from lxctools.log import LEVELS, log
    if log.fd is not None:
        os.close(log.fd)
    log.fd, log.level, log.name, log.prog = None, LEVELS["ERROR"], "", "pyl"


# ---- what a tool's command line may be -----------------------------------------------------------

def declared(tool: str) -> list:
    """The tool's arguments, as the driver declares them (common options included)."""
    return build_parser(tool, import_module(f"lxctools.cli.{TOOLS[tool]}"), MiniParser).args


def parse_like_the_driver(tool: str, argv: list[str]):
    """The Namespace the driver would run TOOL with, or None if it refuses the command line."""
    from lxctools.cli import driver
    module = import_module(f"lxctools.cli.{TOOLS[tool]}")
    own, command = driver._split_command(argv)
    if command is not None and not getattr(module, "TAKES_COMMAND", False):
        own, command = argv, None
    args = build_parser(tool, module, MiniParser).parse(own)
    try:
        if args is None:
            code, _, _ = captured(lambda: _argparse(tool, module, own))
            if code != 0 or not _PARSED:  # refused, or --help / --version: nothing runs
                return None
            args = _PARSED.pop()
        args.command = command
        driver._resolve_name(module, args)
    except PylError:
        return None
    return args


_PARSED: list = []


def _argparse(tool: str, module, own: list[str]) -> int:
    try:
        _PARSED.append(build_parser(tool, module).parse_args(own))
    except PylError:
        return 64
    return 0


def _defined(args, name: str | None) -> bool:
    if not name:
        return False
    lxcpath = os.path.abspath(args.lxcpath or os.environ["PYL_LXCPATH"])
    return os.path.lexists(os.path.join(lxcpath, name))


def harmless(tool: str, argv: list[str]) -> bool:
    """False for a command line that could start a container, touch the host's network, or wait
    or loop for ever; True for every other one (a refused one above all)."""
    args = parse_like_the_driver(tool, argv)
    if args is None:
        return True
    if getattr(args, "logfile", None) == "-" or (getattr(args, "logpriority", None) or "").strip():
        pass  # fine: only changes what stderr carries (see check)
    if tool in ("start", "execute"):
        # with --rcfile a start needs no container folder: the supervisor would be asked
        return not (args.rcfile or args.rcfile_short) and not _defined(args, args.name)
    if tool == "autostart":
        return args.list or args.shutdown or args.kill or args.reboot  # only running ones: none
    if tool == "copy":
        return (args.task or ["copy"])[-1] != "ephemeral"
    if tool == "net":
        return args.action == "status"
    if tool == "monitor":
        if args.quit:
            return True
        import re
        try:
            re.compile(args.name or ".*")
        except re.error:
            return True
        return False
    if tool == "top":
        return args.delay < 0 or args.iterations < 0 or args.iterations == 1
    if tool == "wait":
        from lxctools.state import parse_states
        try:
            states = parse_states(args.state)
        except ValueError:
            return True
        return args.timeout == 0 or "STOPPED" in states
    return True


def argv_strategy(tool: str, world: World):
    args = [a for a in declared(tool) if a.flags[0].startswith("-")]
    # the values a positional with choices takes (pyl-device's add/del, pyl-net's start/stop/status)
    choices = [c for a in declared(tool) if not a.flags[0].startswith("-") for c in a.choices or ()]

    def values_for(flag: str, arg) -> st.SearchStrategy:
        if flag in PATH_OPTIONS:
            return st.sampled_from(world.path_values)
        if flag in OUTPUT_OPTIONS:
            return st.sampled_from(["-", "none", "", "out.txt", "../out", "a/b", "-x", "x" * 300,
                                    *world.file_values[:4], os.path.join(world.files, "adir"), world.null])
        pools = [st.sampled_from(NAMES), st.sampled_from(NUMBERS), st.sampled_from(WORDS),
                 st.sampled_from(world.file_values)]
        if arg.choices:
            pools.insert(0, st.sampled_from(list(arg.choices)))
        return st.one_of(*pools)

    def option(arg) -> st.SearchStrategy:
        flag_st = st.sampled_from(list(arg.flags))

        def with_value(flag: str):
            if arg.action not in ("store", "append") and arg.nargs != "?":
                return st.one_of(st.just([flag]), values_for(flag, arg).map(lambda v: [f"{flag}={v}"]))
            forms = [values_for(flag, arg).map(lambda v: [flag, v]), st.just([flag])]
            forms.append(values_for(flag, arg).map(
                (lambda v: [f"{flag}={v}"]) if flag.startswith("--") else (lambda v: [flag + v])))
            return st.one_of(*forms)
        return flag_st.flatmap(with_value)

    piece = st.one_of(
        st.sampled_from(args).flatmap(option),
        st.sampled_from(args).flatmap(option),
        st.sampled_from(NAMES + WORDS + NUMBERS + choices * 5).map(lambda v: [v]),
        st.sampled_from(["c1", "c2", "c3", "nope", "n1"]).map(lambda v: ["-n", v]),
        st.sampled_from(UNKNOWN).map(lambda v: [v]),
    )
    return st.lists(piece, max_size=6).map(lambda pieces: [t for p in pieces for t in p])


# ---- the property -------------------------------------------------------------------------------

def check(world: World, tool: str, argv: list[str], code: int, out: str, err: str, prog: str) -> None:
    said = f"{prog} {argv!r} -> {code}\nstderr: {err!r}"
    assert "Traceback" not in err and "internal error" not in err, said
    assert code != 70, said
    assert code in DOCUMENTED, said
    if code == 2:
        assert tool in ("stop", "autostart"), said
    after = snapshot(world.lxcpath)
    changed = sorted(set(after.items()) ^ set(world.before.items()))
    if os.geteuid() == 0:
        mode = os.lstat(world.null).st_mode
        if not stat.S_ISCHR(mode):
            world.reset()
        assert stat.S_ISCHR(mode), f"{said}\nreplaced the character device {world.null}"
    if changed:
        world.reset()  # before any assertion: the next example starts from the pristine lxcpath
    if code != 0:
        assert not changed, f"{said}\nthe refused command changed the lxcpath: {changed!r:.2000}"
        assert "\x1b" not in err and "\r" not in err, said  # an escape sequence reaching the terminal
        lines = [line for line in err.splitlines() if ": warning: " not in line]
        if tool == "create":  # a template's own stderr comes first (LXC's template protocol)
            lines = [line for line in lines if line.startswith(f"{prog}: ")]
        args = parse_like_the_driver(tool, argv) if tool in TOOLS else None
        if args is not None and getattr(args, "logfile", None) == "-":
            lines = [line for line in lines if not line.startswith(f"pyl-{tool} ")]
        if lines or not (out or "-q" in argv or "--quiet" in argv):
            assert 1 <= len(lines) <= 2, said
            assert lines[0].startswith(f"{prog}: "), said
            if len(lines) == 2:
                assert lines[1].startswith(f"{prog}: hint: "), said


@pytest.fixture(scope="module")
def world():
    w = World()
    try:
        yield w
    finally:
        w.close()


# PYL_FUZZ_EXAMPLES=1000 for a longer hunt; the default keeps the whole file at ~20 s
EXAMPLES = int(os.environ.get("PYL_FUZZ_EXAMPLES", "40"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                       HealthCheck.function_scoped_fixture])


def run_in_process(world: World, tool: str, argv: list[str]) -> None:
    code, out, err = captured(lambda: run_tool(tool, list(argv)))
    check(world, tool, argv, code, out, err, f"pyl-{tool}")


@pytest.mark.parametrize("tool", ALL_TOOLS)
def test_any_command_line_gets_a_one_line_error_and_a_documented_exit_code(tool, world):
    @FUZZ
    @given(st.data())
    def fuzz(data):
        argv = data.draw(argv_strategy(tool, world), label="argv")
        assume(harmless(tool, argv))
        run_in_process(world, tool, argv)
    fuzz()


@FUZZ
@given(st.data())
def test_the_multicall_entry_takes_any_command_line_too(world, data):
    tool = data.draw(st.sampled_from(ALL_TOOLS), label="tool")
    first = data.draw(st.sampled_from([tool, f"pyl-{tool}", "", "-x", "--bogus", "pyl-", "nope", "x" * 300,
                                       "-h", "--version", "--list"]), label="first")
    argv = [first, *data.draw(argv_strategy(tool, world), label="argv")]
    chosen = first.removeprefix("pyl-")
    assume(chosen not in TOOLS or harmless(chosen, argv[1:]))
    code, out, err = captured(lambda: multicall(list(argv)))
    prog = f"pyl-{chosen}" if chosen in TOOLS else "pyl"
    check(world, chosen if chosen in TOOLS else "pyl", argv[1:] if chosen in TOOLS else argv,
          code, out, err, prog)


@settings(max_examples=max(10, EXAMPLES * 3 // 4), deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                 HealthCheck.function_scoped_fixture])
@given(st.data())
def test_the_same_holds_for_the_real_launchers(world, data):
    """bin/pyl-TOOL in its own process: what the in-process runs stand for."""
    tool = data.draw(st.sampled_from(ALL_TOOLS), label="tool")
    argv = data.draw(argv_strategy(tool, world), label="argv")
    assume(harmless(tool, argv))
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "bin", f"pyl-{tool}"), *argv],
                          capture_output=True, stdin=subprocess.DEVNULL, timeout=60,
                          env={**os.environ, **world.env})
    check(world, tool, argv, proc.returncode, proc.stdout.decode(errors="replace"),
          proc.stderr.decode(errors="replace"), f"pyl-{tool}")


@pytest.mark.parametrize("tool", ALL_TOOLS)
def test_the_fast_parser_agrees_with_argparse_whenever_it_answers(tool, world):
    module = import_module(f"lxctools.cli.{TOOLS[tool]}")

    @FUZZ
    @given(st.data())
    def fuzz(data):
        argv = data.draw(argv_strategy(tool, world), label="argv")
        fast = build_parser(tool, module, MiniParser).parse(argv)
        if fast is None:
            return  # declined: argparse alone decides
        code, _, err = captured(lambda: _argparse(tool, module, argv))
        assert code == 0 and _PARSED, (argv, vars(fast), err)
        assert vars(_PARSED.pop()) == vars(fast), argv
    fuzz()


# ---- what the fuzz found, kept as plain examples -------------------------------------------------

@pytest.mark.parametrize("tool,argv", [
    ("ls", ["c1", "a\nb"]),                      # argparse quoted the newline: a two-line error
    ("info", ["-n", "c1", "x\x1b[31m"]),          # "unexpected argument" quoted an escape sequence
    ("ps", ["--", "-n", "c1"]),                   # ps's 11-line usage text on a failure
    ("ps", ["-P", "x" * 300]),                    # ENAMETOOLONG: exit 70
    ("info", ["-n", "\udcff"]),                   # argv that is no UTF-8: exit 70 in validate_name
    ("attach", ["-P", "\udcff", "c1"]),           # ... and in the run dir's hash of the lxcpath
    ("snapshot", ["-n", "c3"]),                   # a config error left c3/snaps behind
    ("ls", ["-F--", "-1", "-1"]),                 # argparse stored [] for -F--: exit 70
    ("info", ["--name=--", "-P", "x", "-P", "x"]),  # [] as the name: "container name is empty"
    ("update-config", ["-c", "GOOD", "--to", "toml", "-O", "NULL"]),  # /dev/null replaced by a file
    ("update-config", ["-c", "GOOD", "--to", "toml", "-ONULL"]),
])
def test_what_the_fuzz_found(tool, argv, world):
    argv = [a.replace("GOOD", os.path.join(world.files, "good.conf")).replace("NULL", world.null)
            for a in argv]
    if world.null in "".join(argv) and os.geteuid() != 0:
        pytest.skip("needs root (mknod)")
    run_in_process(world, tool, argv)


@pytest.mark.parametrize("argv", [["-inf"], ["-n", "-1e5"], ["-n=c1"], ["-n--"], ["-P", "/x", "-1.5"]])
def test_the_fast_parser_declines_what_argparse_reads_otherwise(argv):
    module = import_module("lxctools.cli.info")
    fast = build_parser("info", module, MiniParser).parse(argv)
    code, _, _ = captured(lambda: _argparse("info", module, argv))
    parsed = _PARSED.pop() if code == 0 and _PARSED else None
    assert fast is None or parsed is not None and vars(fast) == vars(parsed), argv
