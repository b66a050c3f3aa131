"""What a container's first processes do to the supervisor's state they inherit by fork."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_closing_the_supervisors_fds_also_silences_its_log(tmp_path):
    # After close_other_fds the log's fd number is free; the next open reuses it. A log line
    # written later (seccomp's debug lines run in PID 1) must not land in that file.
    code = f"""
import os, sys
sys.path.insert(0, {str(ROOT)!r})
from lxctools.log import log
from lxctools.runtime.procsetup import close_other_fds
log.configure("pyl-monitord", None, {str(tmp_path / 'monitor.log')!r}, "DEBUG")
number = log.fd
close_other_fds(set())
reused = os.open({str(tmp_path / 'reused')!r}, os.O_WRONLY | os.O_CREAT)
assert reused == number, (reused, number)
log.debug("seccomp", "a line for the log only")
print(log.fd)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "None"
    assert (tmp_path / "reused").read_text() == ""


def test_close_fds_except_keeps_stdio_and_what_it_is_given():
    code = f"""
import json, os, sys
sys.path.insert(0, {str(ROOT)!r})
from lxctools.kernel.fds import close_fds_except
opened = [os.open(os.devnull, os.O_RDONLY) for _ in range(6)]
high = os.dup2(opened[0], 700)
close_fds_except({{opened[1], opened[4], 1}})
print(json.dumps([sorted(int(fd) for fd in os.listdir("/proc/self/fd") if int(fd) != opened[0]),
                  opened[1], opened[4]]))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    listed, one, four = json.loads(proc.stdout)
    # listdir's own fd reuses the lowest free number, opened[0]'s, which is left out above
    assert listed == [0, 1, 2, one, four]  # 700 and the others are closed
