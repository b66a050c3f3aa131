"""A command's start-up imports only what it needs: the launchers pip installs are ours (no `re`),
and the commands an admin or a cron job runs most never import the heavy stdlib modules whose
import alone costs more than LXC's whole command (pathlib, json, re, socket, enum, argparse)."""

from __future__ import annotations

import configparser
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lxctools.cli.driver import TOOLS

ROOT = Path(__file__).resolve().parents[2]

# Each costs 0.5-8 ms on a 2-vCPU VM when imported by a command (measured with -X importtime).
HEAVY = {"re", "pathlib", "json", "socket", "enum", "argparse", "contextlib", "selectors", "typing",
         "dataclasses", "subprocess", "tomllib", "tomlkit", "pyroute2", "shutil", "tempfile", "traceback",
         "importlib", "types"}


def test_every_tool_has_a_launcher_and_an_installed_script():
    scripts = configparser.ConfigParser()
    scripts.read(ROOT / "setup.cfg")
    listed = scripts["options"]["scripts"].split()
    assert listed == ["bin/pyl"] + sorted(f"bin/pyl-{tool}" for tool in TOOLS)
    for tool in TOOLS:
        link = ROOT / "bin" / f"pyl-{tool}"
        assert link.is_symlink() and os.readlink(link) == "pyl", link
    assert not scripts.has_section("options.entry_points")  # pip's console-script wrapper imports re


def _modules_after(tool: str, argv: list[str], tmp_path: Path) -> tuple[int, set[str]]:
    code = (
        "import sys\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        f"sys.argv = {[f'pyl-{tool}', *argv]!r}\n"
        "from lxctools.cli.driver import run_tool\n"
        f"rc = run_tool({tool!r})\n"
        "print(rc, ' '.join(sorted(sys.modules)), file=sys.stderr)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYL_", "_ARGCOMPLETE"))}
    env.update(PYL_LXCPATH=str(tmp_path / "lxc"), PYL_RUNDIR=str(tmp_path / "run"))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=30)
    last = proc.stderr.strip().splitlines()[-1]
    rc, _, modules = last.partition(" ")
    return int(rc), set(modules.split())


@pytest.mark.parametrize("tool,argv,rc", [
    ("info", ["-n", "nope"], 66),
    ("freeze", ["-n", "nope"], 66),
    ("unfreeze", ["nope"], 66),
    ("stop", ["-n", "nope", "-k"], 66),
    ("attach", ["-n", "nope", "--", "true"], 66),
    ("start", ["-n", "nope"], 66),
    ("execute", ["-n", "nope", "--", "true"], 66),
    ("ls", [], 0),
    ("ls", ["-1", "--running"], 0),
])
def test_hot_commands_import_nothing_heavy(tool, argv, rc, tmp_path):
    (tmp_path / "lxc").mkdir()
    code, modules = _modules_after(tool, argv, tmp_path)
    assert code == rc
    assert sorted(HEAVY & modules) == []


@pytest.mark.parametrize("tool,argv", [
    ("copy", ["-n", "src", "-N", "snap-clone", "-s"]),
    ("copy", ["-n", "src", "-N", "full-copy"]),
    ("snapshot", ["-n", "src", "-L"]),
    ("destroy", ["-n", "src"]),
])
def test_copy_commands_import_neither_re_nor_pathlib(tool, argv, tmp_path):
    """pyl-copy (full and -s), pyl-snapshot -L and pyl-destroy read and write configs without
    `re`, `enum`, `pathlib`, `contextlib`, `shutil` or `subprocess` (~11 ms of a ~35 ms pyl-copy -s,
    ~18 ms of a ~37 ms pyl-destroy before; docs/PERFORMANCE.md)."""
    src = tmp_path / "lxc" / "src"
    (src / "rootfs" / "etc").mkdir(parents=True)
    (src / "rootfs" / "etc" / "hostname").write_text("src\n")
    (src / "config").write_text(f"lxc.uts.name = src\nlxc.rootfs.path = dir:{src / 'rootfs'}\n"
                                "lxc.net.0.type = empty\nlxc.signal.halt = SIGRTMIN+3\n")
    code, modules = _modules_after(tool, argv, tmp_path)
    assert code == 0
    assert sorted(HEAVY & modules) == []
    assert sorted({"ipaddress", "signal", "fnmatch"} & modules) == []
    if tool == "destroy":
        assert not (tmp_path / "lxc" / "src").exists()


def test_autostart_list_imports_nothing_heavy(tmp_path):
    """pyl-autostart -L (run at boot and by admins to see what boot would do) loads no enum,
    dataclasses, typing or pathlib (~40 ms of a ~70 ms call before; docs/PERFORMANCE.md)."""
    for name, auto in (("a1", 1), ("a2", 0)):
        folder = tmp_path / "lxc" / name
        (folder / "rootfs").mkdir(parents=True)
        (folder / "config").write_text(f"lxc.uts.name = {name}\nlxc.rootfs.path = dir:{folder / 'rootfs'}\n"
                                       f"lxc.start.auto = {auto}\nlxc.start.delay = 4\n")
    code, modules = _modules_after("autostart", ["-L"], tmp_path)
    assert code == 0
    assert sorted(HEAVY & modules) == []
