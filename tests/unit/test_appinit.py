"""pyl-execute's small init (runtime.appinit): it exits with the command's status."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Runs run_app_init in a process of its own (it never returns). With SLOW, Popen returns only
# once the command has exited (waitid WNOWAIT leaves it a zombie): the order in which a quick
# command used to lose its status, a Popen collected at once reaping it first.
INIT = f"""
import os, socket, subprocess, sys
sys.path.insert(0, {str(ROOT)!r})
from lxctools.runtime.appinit import run_app_init
if sys.argv[1] == "slow":
    class SlowPopen(subprocess.Popen):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOWAIT)
    subprocess.Popen = SlowPopen
ours, theirs = socket.socketpair()
run_app_init(sys.argv[2:], {{"PATH": "/usr/bin:/bin"}}, ours)
"""


def run_init(order: str, *command: str) -> int:
    return subprocess.run([sys.executable, "-c", INIT, order, *command], timeout=30).returncode


@pytest.mark.parametrize("order", ["slow", "fast"])
def test_the_commands_status_is_the_inits(order):
    assert run_init(order, "sh", "-c", "exit 3") == 3
    assert run_init(order, "true") == 0


def test_a_command_killed_by_a_signal_is_128_plus_n():
    assert run_init("slow", "sh", "-c", "kill -TERM $$") == 128 + 15


def test_a_command_that_cannot_run_is_127_or_126(tmp_path):
    assert run_init("fast", "no-such-command-here") == 127
    script = tmp_path / "not-executable"
    script.write_text("#!/bin/sh\n")
    assert run_init("fast", str(script)) == 126
