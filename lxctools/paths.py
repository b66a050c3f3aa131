"""Where things live: lxcpath, run dir, lock files, installed templates and configs.

Every path is derived from two roots (the lxcpath and the run dir) so tests can re-root both
in a temp dir. Container folders hold `config.toml` (pyl) or `config` (LXC format).

Layout keeps both roots as strings and answers in strings where a command's hot path asks
(run_path, lxcpath_str, config_file_path); the Path-valued accessors import pathlib on first use,
because `import pathlib` (with fnmatch, re, urllib.parse) costs every command ~7 ms otherwise.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path

CONFIG_NAMES = ("config.toml", "config")
PARTIAL_MARKER = "partial"


def _is_root() -> bool:
    return os.geteuid() == 0


def default_rundir() -> str:
    env = os.environ.get("PYL_RUNDIR")
    if env:
        return env
    if _is_root():
        return "/run/pyl"
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    return os.path.join(xdg, "pyl") if xdg else os.path.expanduser("~/.cache/pyl/run")


def seconds_from_env(name: str, default: float) -> float:
    """A duration set in the environment (PYL_MONITOR_LINGER, PYL_NETWORKER_LINGER): DEFAULT if
    unset or empty, UsageError naming the variable unless it is a finite number >= 0."""
    raw = os.environ.get(name, "")
    if not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        from lxctools.errors import UsageError
        raise UsageError(f"{name}={raw!r} is not a number of seconds")
    return value


def share_dirs() -> list[str]:
    """Folders that may hold templates/ and config/: the checkout first, then install prefixes."""
    here = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
    return [here, os.path.join(sys.prefix, "share", "pyl"), "/usr/local/share/pyl", "/usr/share/pyl"]


def templates_dirs() -> list[str]:
    return [os.path.join(d, "templates") for d in share_dirs()]


def configs_dir() -> str:
    for d in share_dirs():
        for sub in ("configs", "config"):
            if os.path.isdir(os.path.join(d, sub)):
                return os.path.join(d, sub)
    return os.path.join(share_dirs()[-1], "config")


def fnv1a_64(data: bytes) -> int:
    """FNV-1a, 64 bit (LXC hashes long socket paths the same way); hashlib costs ~4 ms to import."""
    value = 0xCBF29CE484222325
    for byte in data:
        value = ((value ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return value


class Layout:
    """The two roots every per-container path hangs from."""

    __slots__ = ("lxcpath_str", "rundir_str", "_rundir_digest")

    def __init__(self, lxcpath: str | os.PathLike, rundir: str | os.PathLike) -> None:
        self.lxcpath_str = os.fspath(lxcpath)
        self.rundir_str = os.fspath(rundir)
        self._rundir_digest: str | None = None

    def _key(self) -> tuple[str, str]:
        return os.path.normpath(self.lxcpath_str), os.path.normpath(self.rundir_str)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Layout) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"Layout(lxcpath={self.lxcpath_str!r}, rundir={self.rundir_str!r})"

    # ---- strings: what a command's hot path uses ------------------------------------------------
    def run_path(self, *parts: str) -> str:
        """A path in the run dir private to this lxcpath: two lxcpaths never share supervisors
        or locks (the folder is named by a hash of the lxcpath)."""
        if self._rundir_digest is None:
            self._rundir_digest = f"{fnv1a_64(os.fsencode(os.path.normpath(self.lxcpath_str))):016x}"
        return os.path.join(self.rundir_str, self._rundir_digest, *parts)

    def container_path(self, name: str) -> str:
        return os.path.join(self.lxcpath_str, name)

    def config_file_path(self, name: str) -> str | None:
        """The container's config file, or None if the folder holds none (not a container)."""
        for candidate in CONFIG_NAMES:
            path = os.path.join(self.lxcpath_str, name, candidate)
            if os.path.isfile(path):
                return path
        return None

    def lock_path(self, name: str) -> str:
        # Outside the container folder so destroy can remove the folder while holding the lock.
        return self.run_path("lock", name)

    def state_path(self, name: str) -> str:
        return self.run_path("state", f"{name}.json")

    def running_lock_path(self, name: str) -> str:
        return self.run_path("state", f"{name}.running")

    # ---- Path objects, for the rest of the library ------------------------------------------------
    @property
    def lxcpath(self) -> Path:
        from pathlib import Path
        return Path(self.lxcpath_str)

    @property
    def rundir(self) -> Path:
        from pathlib import Path
        return Path(self.rundir_str)

    def container_dir(self, name: str) -> Path:
        from pathlib import Path
        return Path(self.container_path(name))

    def config_file(self, name: str) -> Path | None:
        from pathlib import Path
        path = self.config_file_path(name)
        return Path(path) if path is not None else None

    @property
    def path_rundir(self) -> Path:
        from pathlib import Path
        return Path(self.run_path())

    def state_file(self, name: str) -> Path:
        from pathlib import Path
        return Path(self.state_path(name))

    @property
    def monitor_socket(self) -> Path:
        from pathlib import Path
        return Path(self.run_path("monitor.sock"))

    @property
    def monitor_lock(self) -> Path:
        from pathlib import Path
        return Path(self.run_path("monitor.lock"))

    @property
    def monitor_log(self) -> Path:
        from pathlib import Path
        return Path(self.run_path("monitor.log"))
