"""Container-name completion without argcomplete: which words it answers, what it writes, and
that it declines (for argcomplete to answer) everything else. The integration test in
tests/integration/test_completion.py compares its answers with argcomplete's."""

from __future__ import annotations

import importlib
import sys

import pytest

from lxctools.cli import fastcomplete


@pytest.fixture
def lxcpath(tmp_path, monkeypatch):
    for name in ("alpha", "alps", "beta"):
        (tmp_path / "lxc" / name).mkdir(parents=True)
        (tmp_path / "lxc" / name / "config.toml").write_text("[lxc]\n")
    monkeypatch.setenv("PYL_RUNDIR", str(tmp_path / "run"))
    monkeypatch.delenv("PYL_COMPLETION", raising=False)
    monkeypatch.delenv("_ARGCOMPLETE_SHELL", raising=False)
    return tmp_path / "lxc"


def answer(monkeypatch, tmp_path, tool: str, line: str, **env: str):
    out = tmp_path / "out"
    out.write_bytes(b"")
    base = {"_ARGCOMPLETE": "1", "COMP_LINE": line, "COMP_POINT": str(len(line)),
            "_ARGCOMPLETE_IFS": "\n", "_ARGCOMPLETE_SUPPRESS_SPACE": "1", "_ARGCOMPLETE_STDOUT_FILENAME": str(out)}
    for key, value in {**base, **env}.items():
        monkeypatch.setenv(key, value)
    module = importlib.import_module(f"lxctools.cli.{tool.replace('-', '_')}")
    if not fastcomplete.try_complete(tool, module):
        return None
    return out.read_text().split("\n") if out.read_text() else []


@pytest.mark.parametrize("tool,line,expected", [
    ("start", "pyl-start -P {p} al", ["alpha", "alps"]),
    ("start", "pyl-start -P {p} -n b", ["beta"]),
    ("start", "pyl-start --lxcpath {p} -d --name ", ["alpha", "alps", "beta"]),
    ("info", "pyl-info -P {p} -H alp", ["alpha", "alps"]),
    ("destroy", "pyl-destroy -f -P {p} -n ", ["alpha", "alps", "beta"]),
    ("attach", "pyl-attach -P {p} -n ", []),        # none is running
    ("start", "pyl-start -P {p} zz", []),
])
def test_names_are_answered(lxcpath, monkeypatch, tmp_path, tool, line, expected):
    assert answer(monkeypatch, tmp_path, tool, line.format(p=lxcpath)) == expected


@pytest.mark.parametrize("tool,line", [
    ("start", "pyl-start -P {p} -"),                 # an option
    ("start", "pyl-start -P {p} "),                  # a name or an option: argcomplete lists both
    ("start", "pyl-start -P {p} --na"),
    ("create", "pyl-create -P {p} -t "),             # a template
    ("info", "pyl-info -P {p} -c lxc.ne"),           # a config key
    ("start", "pyl-start -P {p} alpha "),            # the name is given: nothing more is a name
    ("start", "pyl-start -P {p} -n alpha "),
    ("start", "pyl-start -P {p} --name=al"),         # argcomplete's word splitting
    ("start", "pyl-start -P '{p}' al"),              # quoting
    ("attach", "pyl-attach -P {p} -n alpha -- ls "),  # a command
    ("cgroup", "pyl-cgroup -P {p} alpha "),          # other positionals
    ("ps", "pyl-ps -P {p} -n "),                     # a comma list
    ("start", "pyl-start -Pd {p} "),                 # combined short options
])
def test_everything_else_is_left_to_argcomplete(lxcpath, monkeypatch, tmp_path, tool, line):
    assert answer(monkeypatch, tmp_path, tool, line.format(p=lxcpath)) is None


def test_protocol_details(lxcpath, monkeypatch, tmp_path):
    line = f"pyl-start -P {lxcpath} be"
    assert answer(monkeypatch, tmp_path, "start", line, _ARGCOMPLETE_SUPPRESS_SPACE="0") == ["beta "]
    assert answer(monkeypatch, tmp_path, "start", line, _ARGCOMPLETE_SHELL="zsh") is None
    assert answer(monkeypatch, tmp_path, "start", line, PYL_COMPLETION="argcomplete") is None
    assert answer(monkeypatch, tmp_path, "start", line, _ARGCOMPLETE="2") is None


def test_the_name_path_imports_neither_argparse_nor_argcomplete(lxcpath, monkeypatch, tmp_path):
    import subprocess
    from pathlib import Path
    root = Path(__file__).resolve().parents[2]
    out = tmp_path / "o"
    line = f"pyl-start -P {lxcpath} al"
    env = {"PATH": "/usr/bin:/bin", "PYL_RUNDIR": str(tmp_path / "run"), "_ARGCOMPLETE": "1",
           "COMP_LINE": line, "COMP_POINT": str(len(line)), "_ARGCOMPLETE_IFS": "\n",
           "_ARGCOMPLETE_SUPPRESS_SPACE": "1", "_ARGCOMPLETE_STDOUT_FILENAME": str(out)}
    code = (f"import sys; sys.path.insert(0, {str(root)!r}); sys.argv = ['pyl-start']\n"
            "from lxctools.cli.driver import run_tool\nrc = run_tool('start')\n"
            "print(rc, 'argparse' in sys.modules, 'argcomplete' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=30)
    assert proc.stdout.split() == ["0", "False", "False"], proc.stderr
    assert out.read_text().split("\n") == ["alpha", "alps"]
