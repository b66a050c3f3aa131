"""pyroute2 is loaded without its package __init__ (every subsystem it has, ~40 ms), and with it
when a pyroute2 version needs it. Each case runs in its own interpreter: loading is once per process."""

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


def _fake_pyroute2(root: Path, init: str, linux: str) -> Path:
    pkg = root / "pyroute2"
    (pkg / "iproute").mkdir(parents=True)
    (pkg / "netlink").mkdir()
    (pkg / "__init__.py").write_text(init)
    (pkg / "iproute" / "__init__.py").write_text("")
    (pkg / "iproute" / "linux.py").write_text(linux)
    (pkg / "netlink" / "__init__.py").write_text("")
    (pkg / "netlink" / "exceptions.py").write_text("class NetlinkError(Exception):\n    pass\n")
    return root


def test_the_real_pyroute2_loads_without_its_other_subsystems():
    pytest.importorskip("pyroute2")
    proc = _run(
        "from lxctools.runtime import net\n"
        "net.load_pyroute2()\n"
        "from pyroute2 import IPRoute, NetlinkError\n"
        "from pyroute2.iproute.linux import IPRoute as Linux\n"
        "assert IPRoute is Linux and issubclass(NetlinkError, Exception)\n"
        "assert net._netlink_error_type() is NetlinkError\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('pyroute2.'))\n"
        "print(' '.join(loaded))\n")
    assert proc.returncode == 0, proc.stderr
    loaded = set(proc.stdout.split())
    assert "pyroute2.iproute.linux" in loaded
    for other in ("pyroute2.ndb.main", "pyroute2.ipdb", "pyroute2.conntrack", "pyroute2.ipset",
                  "pyroute2.netlink.nl80211", "pyroute2.plan9.client"):
        assert other not in loaded, other


def _iproute_attribute_after_loading(fake: Path, attribute: str) -> str:
    """IPRoute.ATTRIBUTE, printed by an interpreter that loaded the FAKE pyroute2 through pyl."""
    proc = _run("from lxctools.runtime import net\n"
                "net.load_pyroute2()\n"
                "from pyroute2 import IPRoute\n"
                f"print(IPRoute.{attribute})\n", fake)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_init_is_not_run(tmp_path):
    fake = _fake_pyroute2(tmp_path, init="raise RuntimeError('__init__ ran')\n",
                          linux="class IPRoute:\n    pass\n")
    assert _iproute_attribute_after_loading(fake, "__module__") == "pyroute2.iproute.linux"


def test_a_version_that_needs_its_init_gets_it(tmp_path):
    # Its IPRoute module imports a name only the package's __init__ defines.
    fake = _fake_pyroute2(tmp_path, init="MARK = 'init ran'\nfrom pyroute2.iproute.linux import IPRoute\n",
                          linux="from pyroute2 import MARK\n\nclass IPRoute:\n    mark = MARK\n")
    assert _iproute_attribute_after_loading(fake, "mark") == "init ran"


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
