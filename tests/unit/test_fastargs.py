"""The fast argv path gives exactly argparse's result for every tool, or declines."""

from __future__ import annotations

import argparse
from importlib import import_module

import pytest
from hypothesis import given, settings, strategies as st

from lxctools.cli.driver import TOOLS, build_parser
from lxctools.cli.fastargs import MiniParser
from lxctools.errors import UsageError

SAMPLES = [
    ("info", ["-n", "c1", "-s", "-p", "-H"]), ("info", ["c1", "-c", "lxc.uts.name", "-c", "lxc.tty.max"]),
    ("ls", ["-f", "-F", "name,state", "--running"]), ("ls", ["-1", "web"]), ("ls", ["--json", "-g", "a,b"]),
    ("stop", ["-n", "c1", "-t", "-1"]), ("stop", ["c1", "-k"]), ("freeze", ["-P", "/tmp/x", "c1"]),
    ("start", ["-n", "c1", "-s", "a=b", "-s", "c=d", "--share-net", "c2"]), ("wait", ["c1", "-s", "RUNNING", "-t", "2.5"]),
    ("attach", ["-n", "c1", "-v", "A=1", "--keep-var", "HOME", "-u", "1000", "--no-pty"]),
    ("attach", ["-n", "c1", "--clear-env", "--keep-env"]), ("ls", ["--running", "--stopped"]),
    ("console", ["c1", "-t", "2", "-e", "^b"]), ("create", ["-n", "c1", "-t", "busybox", "--dir", "/srv/r"]),
    ("info", ["--bogus"]), ("info", ["-h"]), ("stop", ["-qk", "c1"]), ("info", ["-n"]), ("wait", ["c1"]),
    ("ls", ["--fanc"]), ("info", ["c1", "c2"]), ("attach", ["-e", "-n", "c1"]), ("stop", ["-t", "abc", "c1"]),
]


def argparse_result(tool: str, argv: list[str]):
    module = import_module(f"lxctools.cli.{TOOLS[tool]}")
    try:
        return vars(build_parser(tool, module).parse_args(argv))
    except (UsageError, SystemExit):
        return "error"


def fast_result(tool: str, argv: list[str]):
    module = import_module(f"lxctools.cli.{TOOLS[tool]}")
    ns = build_parser(tool, module, MiniParser).parse(argv)
    return None if ns is None else vars(ns)


@pytest.mark.parametrize("tool,argv", SAMPLES)
def test_same_as_argparse_or_declined(tool, argv):
    fast = fast_result(tool, argv)
    if fast is not None:
        assert fast == argparse_result(tool, argv)


def test_plain_command_lines_take_the_fast_path():
    assert fast_result("info", ["-n", "c1", "-s"]) is not None
    assert fast_result("attach", ["-n", "c1"]) is not None
    assert fast_result("ls", ["-f"]) is not None
    assert fast_result("info", ["-h"]) is None            # help is argparse's
    assert fast_result("ls", ["--running", "--stopped"]) is None  # so are its conflict errors


TOKENS = st.sampled_from(["-n", "c1", "-P", "/tmp/x", "-s", "-p", "-H", "-q", "-c", "lxc.uts.name", "-k", "-t",
                          "5", "-1", "--json", "-f", "-F", "name", "--running", "--stopped", "-e", "x", "--",
                          "-v", "A=1", "--keep-env", "--clear-env", "--nowait", "-r", "--bogus", "-qk", "=", "-",
                          "--pty", "--no-pty", "-u", "0", "-g", "2.5", "-L", "--share-net", "-d", "-F", "-l",
                          "DEBUG", "-o", "--rcfile", "-S", "-i", "--fancy-format=name", "--name=c2", "-nc3"])


@settings(max_examples=3000, deadline=None)
@given(st.sampled_from(sorted(TOOLS)), st.lists(TOKENS, max_size=8))
def test_random_command_lines(tool, argv):
    fast = fast_result(tool, argv)
    if fast is not None:
        assert fast == argparse_result(tool, argv), (tool, argv)


def test_the_spelled_out_suppress_is_argparses():
    import argparse

    from lxctools.cli.driver import SUPPRESS
    assert SUPPRESS == argparse.SUPPRESS
