"""What an admin's typo or a cron job's odd environment must never turn into: a traceback, a
two-line error, a help text that lies, or a supervisor that dies for every container."""

from __future__ import annotations

import errno
import io
import math
import os
import shutil
import sys
import tempfile

import pytest

from lxctools.cli.driver import TOOLS, build_parser, import_module, run_tool
from lxctools.errors import ExitCode, InvalidNameError


# ---- names --------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["a\nb", "\x1b[31mred", "x\ry", "tab\there", "é" * 40 + "\n"])
def test_a_rejected_name_is_shown_on_one_line_without_control_characters(name):
    with pytest.raises(InvalidNameError) as err:
        from lxctools.names import validate_name
        validate_name(name)
    text = err.value.message + (err.value.hint or "")
    assert "\n" not in text and "\r" not in text and "\x1b" not in text and "\t" not in text


# ---- --help is what the tool does --------------------------------------------------------------

@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_help_never_shows_argparse_internals(tool):
    text = build_parser(tool, import_module(f"lxctools.cli.{TOOLS[tool]}")).format_help()
    assert "SUPPRESS" not in text


@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_the_name_option_promises_a_positional_name_only_where_there_is_one(tool):
    text = build_parser(tool, import_module(f"lxctools.cli.{TOOLS[tool]}")).format_help()
    if "first argument" in text:
        assert tool not in ("monitor", "ps", "update-config"), text


def test_pyl_monitor_says_its_name_is_a_regular_expression():
    text = build_parser("monitor", import_module("lxctools.cli.monitor")).format_help()
    assert "regular expression" in text.split("common options")[1]


def test_update_config_help_examples_use_its_own_output_option():
    module = import_module("lxctools.cli.update_config")
    assert " -o " not in module.HELP  # -o is the common --logfile; the output file is -O


@pytest.mark.parametrize("tool", ["stop", "wait", "console", "destroy", "freeze", "unfreeze"])
def test_rcfile_is_said_to_be_ignored_where_it_is(tool):
    text = build_parser(tool, import_module(f"lxctools.cli.{TOOLS[tool]}")).format_help()
    options = text.split("common options")[1]
    rcfile = options[options.index("--rcfile"):].split("--debug")[0]
    assert "ignored" in rcfile


# ---- durations ----------------------------------------------------------------------------------

@pytest.mark.parametrize("tool,argv", [
    # STOPPED, a missing container, no container, two refreshes: each would return at once
    # (or fail) if the value got through, never wait on it
    ("wait", ["-n", "c1", "-s", "STOPPED", "-t"]), ("stop", ["-n", "c1", "-t"]),
    ("autostart", ["-t"]), ("top", ["--batch", "-n", "2", "-d"]),
])
@pytest.mark.parametrize("value", ["inf", "nan", "-inf", "1e400", "1e20"])
def test_a_duration_that_is_no_number_of_seconds_is_a_usage_error(tool, argv, value, capsys, tmp_path,
                                                                  monkeypatch):
    monkeypatch.setenv("PYL_LXCPATH", str(tmp_path / "lxc"))
    monkeypatch.setenv("PYL_RUNDIR", str(tmp_path / "run"))
    assert run_tool(tool, [*argv, value]) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert err.count("\n") <= 2 and "Traceback" not in err
    assert value in err or value == "-inf"  # argparse takes -inf for an option: "expected one argument"


def test_seconds_accepts_what_lxc_accepts():
    from lxctools.cli.driver import seconds
    assert seconds("-1") == -1 and seconds("0") == 0 and seconds("2.5") == 2.5 and seconds("86400") == 86400
    for bad in ("nan", "inf", "1e400", "x", ""):
        with pytest.raises(ValueError):
            seconds(bad)


# ---- the supervisor survives any timeout a client sends -------------------------------------------

@pytest.fixture
def sup(tmp_path):
    from lxctools.monitor.supervisor import Supervisor
    from lxctools.paths import Layout
    rundir = tempfile.mkdtemp(prefix="pylu-", dir="/tmp")
    supervisor = Supervisor(Layout(lxcpath=tmp_path, rundir=rundir), linger=0)
    yield supervisor
    supervisor.sel.close()
    shutil.rmtree(rundir)


class _Client:
    closed = False

    def __init__(self) -> None:
        self.on_close: list = []


@pytest.mark.parametrize("timeout", [math.inf, 1e300, 1e20, math.nan, -math.inf])
def test_a_wait_with_any_timeout_leaves_a_timeout_select_accepts(sup, timeout):
    sup.idle_since = None
    sup.op_wait(_Client(), {"name": "c1", "states": ["RUNNING"], "timeout": timeout}, [])
    value = sup._next_timeout()
    assert value is None or 0 <= value <= 86400
    sup.sel.select(0 if value is None else min(value, 0))  # what crashed: math.ceil(inf), poll overflow
    assert all(w.deadline is None or math.isfinite(w.deadline) for w in sup.waiters)


def test_a_huge_pending_deadline_never_reaches_select(sup):
    from lxctools.monitor.records import Waiter
    import time
    sup.idle_since = None
    sup.waiters.append(Waiter(_Client(), "c1", frozenset(), time.monotonic() + 1e300))
    assert 0 <= sup._next_timeout() <= 86400


# ---- output that cannot be written ------------------------------------------------------------

def test_a_closed_stdout_is_dropped_output_not_an_internal_error(tmp_path):
    import subprocess
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYL_")}
    env.update(PYL_LXCPATH=str(tmp_path / "lxc"), PYL_RUNDIR=str(tmp_path / "run"))
    for argv in (["config", "-l"], ["ls"], ["ls", "-f"], ["checkconfig"]):
        proc = subprocess.run(["sh", "-c", '"$@" >&-', "sh", sys.executable, f"{root}/bin/pyl", *argv],
                              capture_output=True, text=True, env=env, timeout=60)
        assert proc.returncode in (0, 1) and "internal error" not in proc.stderr, (argv, proc.stderr)


# ---- the host says no ---------------------------------------------------------------------------

@pytest.mark.parametrize("code", [errno.EACCES, errno.EPERM])
def test_permission_denied_from_the_host_is_exit_77_in_one_line(code, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("PYL_LXCPATH", str(tmp_path / "lxc"))
    monkeypatch.setenv("PYL_RUNDIR", str(tmp_path / "run"))
    module = import_module("lxctools.cli.ls")

    def refuse(args, ctx):
        raise PermissionError(code, os.strerror(code), "/var/lib/pyl/c1")
    monkeypatch.setattr(module, "run", refuse)
    assert run_tool("ls", []) == ExitCode.PERMISSION
    err = capsys.readouterr().err
    assert err == f"pyl-ls: {os.strerror(code)}: /var/lib/pyl/c1\n"


def test_a_terminating_signal_during_an_operation_exits_128_plus_it(monkeypatch, tmp_path):
    from lxctools.errors import Terminated
    monkeypatch.setenv("PYL_LXCPATH", str(tmp_path / "lxc"))
    monkeypatch.setenv("PYL_RUNDIR", str(tmp_path / "run"))
    module = import_module("lxctools.cli.ls")

    def killed(args, ctx):
        raise Terminated(15)
    monkeypatch.setattr(module, "run", killed)
    assert run_tool("ls", []) == 143


# ---- pyl-ps -n: this lxcpath's container, not a namesake of another ------------------------------

def test_a_namesake_of_another_lxcpath_is_not_one_of_the_named_containers():
    from lxctools import inspection
    ref = inspection.ContainerRef("a", 100, frozenset({100, 101}), "pid:[1]", 1)
    foreign_cgroup = "0::/pyl.payload.a\n"   # the other lxcpath's 'a' (ours is pyl.payload.a-1)
    assert inspection.classify(555, foreign_cgroup, "pid:[9]", [ref]) == ("a", None)
    assert inspection.classify(555, foreign_cgroup, "pid:[9]", [ref], foreign=False) == (None, None)
    assert inspection.classify(101, foreign_cgroup, "pid:[1]", [ref], foreign=False) == ("a", ref)



def test_update_config_output_in_a_missing_folder_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PYL_LXCPATH", str(tmp_path / "lxc"))
    monkeypatch.setenv("PYL_RUNDIR", str(tmp_path / "run"))
    source = tmp_path / "c.conf"
    source.write_text("lxc.uts.name = c1\n")
    target = tmp_path / "nope" / "c.toml"
    assert run_tool("update-config", ["-c", str(source), "--to", "toml", "-O", str(target)]) == ExitCode.NOT_FOUND
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(target) in err
    assert not (tmp_path / "nope").exists()


@pytest.mark.parametrize("escape", ["", "^", "é", "^é", "1", "ab"])
def test_a_console_escape_that_is_no_ascii_letter_is_refused(escape):
    from lxctools.cli.console import escape_code
    from lxctools.errors import UsageError
    with pytest.raises(UsageError):
        escape_code(escape)
    assert escape_code("^B") == 2 and escape_code("a") == 1


@pytest.mark.parametrize("columns", ["", ",", " , "])
def test_ls_F_without_a_column_is_a_usage_error(columns, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PYL_LXCPATH", str(tmp_path / "lxc"))
    monkeypatch.setenv("PYL_RUNDIR", str(tmp_path / "run"))
    assert run_tool("ls", ["-F", columns]) == ExitCode.USAGE
    assert "-F needs at least one column" in capsys.readouterr().err


@pytest.mark.parametrize("tool", ["start", "execute"])
@pytest.mark.parametrize("pair", ["foo", "=x", "lxc.uts.name"])
def test_a_define_without_key_and_equals_is_a_usage_error(tool, pair, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PYL_LXCPATH", str(tmp_path / "lxc"))
    monkeypatch.setenv("PYL_RUNDIR", str(tmp_path / "run"))
    assert run_tool(tool, ["-n", "c1", "-s", pair, "--", "true"]) == ExitCode.USAGE
    assert "expected KEY=VALUE" in capsys.readouterr().err


@pytest.mark.parametrize("tool,argv", [("ls", ["-f"]), ("info", ["-n", "c1"]), ("start", ["-n", "c1"]),
                                       ("destroy", ["-n", "c1"])])
def test_a_run_dir_that_is_a_file_is_one_line(tool, argv, tmp_path, monkeypatch, capsys):
    afile = tmp_path / "afile"
    afile.write_text("")
    monkeypatch.setenv("PYL_LXCPATH", str(tmp_path / "lxc"))
    monkeypatch.setenv("PYL_RUNDIR", str(afile))
    (tmp_path / "lxc" / "c1").mkdir(parents=True)
    (tmp_path / "lxc" / "c1" / "config").write_text("lxc.uts.name = c1\n")
    assert run_tool(tool, argv) == ExitCode.NOT_FOUND
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "run dir" in err and "internal error" not in err


@pytest.mark.parametrize("shell", ['"$@" >&-', '"$@" | head -1 >/dev/null'])
@pytest.mark.parametrize("argv", [["--help"], ["--list"]])
def test_the_multicall_entry_survives_closed_stdout_and_a_reader_that_left(shell, argv, tmp_path):
    import subprocess
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    proc = subprocess.run(["sh", "-c", shell, "sh", sys.executable, f"{root}/bin/pyl", *argv],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr


@pytest.mark.parametrize(("code", "exit_code"), [
    (errno.ENOENT, 66), (errno.ENOTDIR, 66), (errno.EACCES, 77), (errno.EPERM, 77),
    (errno.EROFS, 1), (errno.EISDIR, 1),
])
def test_a_file_named_on_the_command_line_maps_errnos_as_every_command_does(code, exit_code):
    """A read-only file system is README's 1 (the host's condition), for a pid or log file too."""
    from lxctools.errors import file_error
    err = file_error(OSError(code, os.strerror(code)), "the pid file '/x'")
    assert int(err.exit_code) == exit_code and err.message == f"cannot open the pid file '/x': {os.strerror(code)}"
