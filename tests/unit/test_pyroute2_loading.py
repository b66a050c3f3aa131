"""pyroute2's message classes are loaded without its package __init__ and without IPRoute
(every subsystem it has, asyncio with them: ~100-190 ms), and with the __init__ when a
pyroute2 version needs it. Each case runs in its own interpreter: loading is once per process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(code: str, extra_path: Path | None = None) -> subprocess.CompletedProcess:
    paths = [str(ROOT)] + ([str(extra_path)] if extra_path else [])
    prelude = "import sys\n" + "".join(f"sys.path.insert(0, {p!r})\n" for p in reversed(paths))
    return subprocess.run([sys.executable, "-c", prelude + code], capture_output=True, text=True, timeout=60)


def _fake_pyroute2(root: Path, init: str, ifinfmsg: str) -> Path:
    """A pyroute2 with the three message modules pyl loads; ifinfmsg's body is IFINFMSG."""
    rtnl = root / "pyroute2" / "netlink" / "rtnl"
    rtnl.mkdir(parents=True)
    (root / "pyroute2" / "__init__.py").write_text(init)
    (root / "pyroute2" / "netlink" / "__init__.py").write_text("")
    (rtnl / "__init__.py").write_text("")
    (rtnl / "ifinfmsg.py").write_text(ifinfmsg)
    (rtnl / "ifaddrmsg.py").write_text("class ifaddrmsg:\n    pass\n")
    (rtnl / "rtmsg.py").write_text("class rtmsg:\n    pass\n")
    return root


def test_the_real_pyroute2_loads_only_its_message_classes():
    pytest.importorskip("pyroute2")
    proc = _run(
        "from lxctools.runtime import net\n"
        "net.load_pyroute2()\n"
        "from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg\n"
        "from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg\n"
        "from pyroute2.netlink.rtnl.rtmsg import rtmsg\n"
        "assert net._message_class('ifinfmsg') is ifinfmsg and net._message_class('rtmsg') is rtmsg\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('pyroute2.') or m == 'asyncio')\n"
        "print(' '.join(loaded))\n")
    assert proc.returncode == 0, proc.stderr
    loaded = set(proc.stdout.split())
    assert "pyroute2.netlink.rtnl.ifinfmsg" in loaded
    # IPRoute and its asyncio core are what made a netlink worker's first request slow.
    for other in ("asyncio", "pyroute2.iproute.linux", "pyroute2.ndb.main", "pyroute2.ipdb",
                  "pyroute2.conntrack", "pyroute2.ipset", "pyroute2.netlink.nl80211", "pyroute2.plan9.client"):
        assert other not in loaded, other


def _ifinfmsg_attribute_after_loading(fake: Path, attribute: str) -> str:
    """ifinfmsg.ATTRIBUTE, printed by an interpreter that loaded the FAKE pyroute2 through pyl."""
    proc = _run("from lxctools.runtime import net\n"
                "net.load_pyroute2()\n"
                f"print(net._message_class('ifinfmsg').{attribute})\n", fake)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_init_is_not_run(tmp_path):
    fake = _fake_pyroute2(tmp_path, init="raise RuntimeError('__init__ ran')\n",
                          ifinfmsg="class ifinfmsg:\n    pass\n")
    assert _ifinfmsg_attribute_after_loading(fake, "__module__") == "pyroute2.netlink.rtnl.ifinfmsg"


def test_a_version_that_needs_its_init_gets_it(tmp_path):
    # Its message module imports a name only the package's __init__ defines.
    fake = _fake_pyroute2(tmp_path, init="MARK = 'init ran'\n",
                          ifinfmsg="from pyroute2 import MARK\n\nclass ifinfmsg:\n    mark = MARK\n")
    assert _ifinfmsg_attribute_after_loading(fake, "mark") == "init ran"


def test_missing_pyroute2_is_one_clear_error(tmp_path):
    # Hide the installed one behind a meta path finder that refuses it.
    proc = _run("import importlib.abc\n"
                "class Hide(importlib.abc.MetaPathFinder):\n"
                "    def find_spec(self, name, path=None, target=None):\n"
                "        if name == 'pyroute2' or name.startswith('pyroute2.'):\n"
                "            raise ModuleNotFoundError(name)\n"
                "sys.meta_path.insert(0, Hide())\n"
                "from lxctools.errors import PylError\n"
                "from lxctools.runtime import net\n"
                "try:\n"
                "    net.load_pyroute2()\n"
                "except PylError as err:\n"
                "    print(err)\n")
    assert proc.returncode == 0, proc.stderr
    assert "pyroute2 is not installed" in proc.stdout
