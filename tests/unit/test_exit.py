"""How a pyl command ends: finish() flushes and leaves without the interpreter's teardown, and
an OSError that is the host's condition (a full disk) is one line and exit 1, not "a bug"."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(code: str, stdout, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYL_", "_ARGCOMPLETE"))}
    env.update(PYL_LXCPATH=str(tmp_path / "lxc"), PYL_RUNDIR=str(tmp_path / "run"))
    (tmp_path / "lxc").mkdir(exist_ok=True)
    prelude = f"import sys\nsys.path.insert(0, {str(ROOT)!r})\nfrom lxctools.cli.driver import finish, run_tool\n"
    return subprocess.run([sys.executable, "-c", prelude + code], stdout=stdout, stderr=subprocess.PIPE,
                          text=True, env=env, timeout=30)


def test_finish_flushes_what_was_written_and_keeps_the_code(tmp_path):
    r = _run("sys.stdout.write('buffered, never flushed by hand\\n')\nfinish(3)", subprocess.PIPE, tmp_path)
    assert (r.returncode, r.stdout, r.stderr) == (3, "buffered, never flushed by hand\n", "")


def test_finish_says_when_the_output_could_not_be_written(tmp_path):
    # the output still buffered when the tool returned, and the disk under it full
    code = ("import io\n"
            "class Full(io.StringIO):\n"
            "    def flush(self):\n"
            "        raise OSError(28, 'No space left on device')\n"
            "sys.argv[0] = 'pyl-x'\nsys.stdout = Full()\nfinish(0)")
    r = _run(code, subprocess.PIPE, tmp_path)
    assert r.returncode == 1
    assert r.stderr == "pyl-x: cannot write the output: No space left on device\n"


def test_a_full_disk_under_the_output_is_one_line_and_exit_1(tmp_path):
    with open("/dev/full", "w") as full:
        r = _run("sys.argv = ['pyl-ls', '--json']\nfinish(run_tool('ls'))", full, tmp_path)
    assert r.returncode == 1
    assert r.stderr == "pyl-ls: No space left on device\n"


def test_finish_with_stdout_and_stderr_closed(tmp_path):
    # cron may start a command with its stdio closed: Python then has no sys.stdout at all
    r = subprocess.run(["sh", "-c", '"$@" >&- 2>&-', "sh", sys.executable, "-c",
                        f"import sys\nsys.path.insert(0, {str(ROOT)!r})\n"
                        "from lxctools.cli.driver import finish\nassert sys.stdout is None\nfinish(4)"],
                       timeout=30)
    assert r.returncode == 4
