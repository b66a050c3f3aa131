"""Where things live: lxcpath, run dir, lock files, installed templates and configs.

Every path is derived from two roots (the lxcpath and the run dir) so tests can re-root both
in a temp dir. Container folders hold `config.toml` (pyl) or `config` (LXC format).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

CONFIG_NAMES = ("config.toml", "config")
PARTIAL_MARKER = "partial"


def _is_root() -> bool:
    return os.geteuid() == 0


def default_rundir() -> Path:
    env = os.environ.get("PYL_RUNDIR")
    if env:
        return Path(env)
    if _is_root():
        return Path("/run/pyl")
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    return Path(xdg, "pyl") if xdg else Path.home() / ".cache" / "pyl" / "run"


def share_dirs() -> list[Path]:
    """Folders that may hold templates/ and config/: the checkout first, then install prefixes."""
    here = Path(__file__).resolve().parent.parent
    return [here, Path(sys.prefix, "share", "pyl"), Path("/usr/local/share/pyl"), Path("/usr/share/pyl")]


def templates_dirs() -> list[Path]:
    return [d / "templates" for d in share_dirs()]


def configs_dir() -> Path:
    for d in share_dirs():
        for sub in ("configs", "config"):
            if (d / sub).is_dir():
                return d / sub
    return share_dirs()[-1] / "config"


def fnv1a_64(data: bytes) -> int:
    """FNV-1a, 64 bit (LXC hashes long socket paths the same way); hashlib costs ~4 ms to import."""
    value = 0xCBF29CE484222325
    for byte in data:
        value = ((value ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return value


class Layout:
    """The two roots every per-container path hangs from."""

    __slots__ = ("lxcpath", "rundir")

    def __init__(self, lxcpath: Path, rundir: Path) -> None:
        self.lxcpath = Path(lxcpath)
        self.rundir = Path(rundir)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Layout) and (self.lxcpath, self.rundir) == (other.lxcpath, other.rundir)

    def __hash__(self) -> int:
        return hash((self.lxcpath, self.rundir))

    def __repr__(self) -> str:
        return f"Layout(lxcpath={str(self.lxcpath)!r}, rundir={str(self.rundir)!r})"

    def container_dir(self, name: str) -> Path:
        return self.lxcpath / name

    def config_file(self, name: str) -> Path | None:
        """The container's config file, or None if the folder holds none (not a container)."""
        folder = self.container_dir(name)
        for candidate in CONFIG_NAMES:
            path = folder / candidate
            if path.is_file():
                return path
        return None

    @property
    def path_rundir(self) -> Path:
        """Run dir private to this lxcpath: two lxcpaths never share supervisors or locks."""
        digest = f"{fnv1a_64(str(self.lxcpath).encode()):016x}"
        return self.rundir / digest

    def lock_file(self, name: str) -> Path:
        # Outside the container folder so destroy can remove the folder while holding the lock.
        return self.path_rundir / "lock" / name

    def state_file(self, name: str) -> Path:
        return self.path_rundir / "state" / f"{name}.json"

    def running_lock_file(self, name: str) -> Path:
        return self.path_rundir / "state" / f"{name}.running"

    @property
    def monitor_socket(self) -> Path:
        return self.path_rundir / "monitor.sock"

    @property
    def monitor_lock(self) -> Path:
        return self.path_rundir / "monitor.lock"

    @property
    def monitor_log(self) -> Path:
        return self.path_rundir / "monitor.log"
