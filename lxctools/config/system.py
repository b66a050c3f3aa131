"""pyl's system configuration (/etc/pyl/pyl.toml, then the user's pyl.toml for non-root).

Owns the defaults every command needs before it can find a container: lxcpath,
default_config, default_bridge, rundir (and LXC's bdev/cgroup keys for pyl-config).
Runs in every command, so it stays import-cheap: no key table, no TOML reader unless a
file exists. Files are TOML with LXC key names (`[lxc] lxcpath = "/srv/pyl"`); later files
override earlier ones; PYL_LXCPATH overrides lxc.lxcpath.
"""

from __future__ import annotations

import os

from lxctools.errors import ConfigError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from pathlib import Path

SYSTEM_FILE = "/etc/pyl/pyl.toml"


class SystemConfig:
    """Resolved system settings; `values` maps every set key (LXC names) to its value."""

    __slots__ = ("values", "sources")

    def __init__(self, values: dict[str, str], sources: list[str]) -> None:
        self.values = values
        self.sources = sources   # files that were read, in order

    @property
    def lxcpath(self) -> str:
        return self.values["lxc.lxcpath"]

    @property
    def default_config(self) -> str:
        return self.values["lxc.default_config"]

    @property
    def default_bridge(self) -> str:
        return self.values["lxc.default_bridge"]

    @property
    def rundir(self) -> str:
        return self.values["lxc.rundir"]

    def get(self, key: str) -> str | None:
        return self.values.get(key)

    def __repr__(self) -> str:
        return f"SystemConfig({self.values!r})"


def _user_dir(env: Mapping[str, str], var: str, fallback: str) -> str:
    base = env.get(var) or os.path.join(env.get("HOME") or os.path.expanduser("~"), fallback)
    return os.path.join(base, "pyl")


def default_paths(euid: int | None = None, env: Mapping[str, str] | None = None) -> list[str]:
    """Files read by default: the system file, plus the user's for non-root."""
    euid = os.geteuid() if euid is None else euid
    env = os.environ if env is None else env
    paths = [SYSTEM_FILE]
    if euid != 0:
        paths.append(os.path.join(_user_dir(env, "XDG_CONFIG_HOME", ".config"), "pyl.toml"))
    return paths


def defaults(euid: int | None = None, env: Mapping[str, str] | None = None) -> dict[str, str]:
    euid = os.geteuid() if euid is None else euid
    env = os.environ if env is None else env
    if euid == 0:
        return {
            "lxc.lxcpath": "/var/lib/pyl",
            "lxc.default_config": "/etc/pyl/default.toml",
            "lxc.default_bridge": "pylbr0",
            "lxc.rundir": "/run/pyl",
        }
    runtime = env.get("XDG_RUNTIME_DIR")
    return {
        "lxc.lxcpath": _user_dir(env, "XDG_DATA_HOME", ".local/share"),
        # LXC's user default is ~/.config/lxc/default.conf (it needs an idmap).
        "lxc.default_config": os.path.join(_user_dir(env, "XDG_CONFIG_HOME", ".config"), "default.toml"),
        "lxc.default_bridge": "pylbr0",
        "lxc.rundir": os.path.join(runtime, "pyl") if runtime else _user_dir(env, "XDG_CACHE_HOME", ".cache") + "/run",
    }


def _read_file(path: str) -> dict[str, str]:
    from lxctools.config.keys import lookup_system
    from lxctools.config.model import read_config_text
    from lxctools.config.tomlformat import load_toml

    data = load_toml(read_config_text(path), path)
    found: dict[str, str] = {}

    def walk(prefix: str, table: dict) -> None:
        for name, value in table.items():
            key = f"{prefix}.{name}" if prefix else name
            if isinstance(value, dict):
                walk(key, value)
                continue
            if not key.startswith("lxc."):
                continue
            try:
                spec = lookup_system(key)
            except ConfigError as exc:
                raise ConfigError(f"{path}: {exc.message}") from None
            if isinstance(value, bool) or not isinstance(value, (str, int)):
                raise ConfigError(f"{path}: {key}: expected a string")
            value = str(value)
            if value:
                try:
                    spec.validate(value)
                except ValueError as exc:
                    raise ConfigError(f"{path}: invalid value '{value}' for {key}: {exc}") from None
            found[key] = value

    walk("", data)
    return found


def load_system_config(paths: Sequence[str | Path] | None = None, *, euid: int | None = None,
                       env: Mapping[str, str] | None = None) -> SystemConfig:
    """Defaults, overridden by each existing file of PATHS in order, then PYL_LXCPATH."""
    env = os.environ if env is None else env
    values = defaults(euid, env)
    sources: list[str] = []
    for path in (default_paths(euid, env) if paths is None else [os.fspath(p) for p in paths]):
        if not os.path.isfile(path):
            continue
        for key, value in _read_file(path).items():
            if value:
                values[key] = value
            elif key not in ("lxc.lxcpath", "lxc.default_config", "lxc.default_bridge", "lxc.rundir"):
                values.pop(key, None)   # "" unsets an optional key
        sources.append(path)
    if env.get("PYL_LXCPATH"):
        values["lxc.lxcpath"] = env["PYL_LXCPATH"]
    return SystemConfig(values, sources)
