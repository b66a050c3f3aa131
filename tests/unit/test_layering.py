"""The architecture holds: cli never imports runtime/kernel at module level... and only kernel/
imports ctypes, only runtime/net imports pyroute2 (lazily), runtime never imports container/cli."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[2] / "lxctools"


def imports(path: Path, top_level_only: bool) -> set[str]:
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def modules():
    for path in PKG.rglob("*.py"):
        yield path.relative_to(PKG).as_posix(), path


def test_only_kernel_imports_ctypes():
    offenders = [rel for rel, path in modules() if not rel.startswith("kernel/")
                 and any(m == "ctypes" or m.startswith("ctypes.") for m in imports(path, False))
                 and rel not in ("cli/checkconfig.py",)]  # ctypes.util.find_library: a lookup, no calls
    assert offenders == []


def test_only_net_imports_pyroute2_and_lazily():
    for rel, path in modules():
        everywhere = {m for m in imports(path, False) if m.startswith("pyroute2")}
        if rel in ("runtime/net.py", "runtime/bridge.py", "runtime/devices.py"):
            assert not {m for m in imports(path, True) if m.startswith("pyroute2")}, rel
        else:
            assert not everywhere, rel


def test_runtime_never_imports_container_or_cli():
    for rel, path in modules():
        if rel.startswith(("runtime/", "kernel/")):
            bad = {m for m in imports(path, False) if m.startswith(("lxctools.cli", "lxctools.container",
                                                                     "lxctools.monitor"))}
            assert not bad, (rel, bad)


def test_cli_does_not_touch_runtime_or_kernel():
    """Tools talk to the Container API (and the supervisor's client), never to the runtime."""
    for rel, path in modules():
        if rel.startswith("cli/"):
            bad = {m for m in imports(path, False) if m.startswith(("lxctools.kernel", "lxctools.runtime"))}
            assert not bad, (rel, bad)


def test_cli_module_level_imports_are_cheap():
    heavy = ("lxctools.runtime", "lxctools.config.model", "pyroute2", "tomlkit")
    for rel, path in modules():
        if rel.startswith("cli/"):
            bad = {m for m in imports(path, True) if m.startswith(heavy)}
            assert not bad, (rel, bad)
