"""The few config values pyl-ls shows, per container, cached while the files behind them are
unchanged.

`pyl-ls --fancy` over 100 containers used to parse and validate every stopped container's
config (and its includes) on each run: ~30 of its ~65 ms. The summary (autostart, groups,
idmap, memory limit, rootfs, template, or the config's error) is kept in one JSON file in the
lxcpath's run dir, with the stat (inode, size, mtime in ns) of every path the config's expansion
read: the file, each include as written (a directory's listing counts) and the files read
through it. A stamp that differs, a path that appeared or vanished, means a fresh parse.
As git does against "racy" timestamps, a summary whose files changed in the last two seconds is
not cached (a write within the same mtime tick would otherwise go unseen). The cache is an
optimisation only: unreadable or unwritable (another user's run dir), it is ignored.
"""

from __future__ import annotations

import os
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from lxctools.paths import Layout

from lxctools import cjson
from lxctools.config import TEMPLATE_LINE

CACHE_FILE = "ls-summary.json"
VERSION = 1
KEYS = ("lxc.start.auto", "lxc.group", "lxc.idmap", "lxc.cgroup2.memory.max",
        "lxc.cgroup.memory.limit_in_bytes", "lxc.rootfs.path")
_RACY_SECONDS = 2.0


def _stamp(path: str) -> list[int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_ino, st.st_size, st.st_mtime_ns]


class Summaries:
    """Summaries of the containers of one lxcpath; save() writes back what changed."""

    def __init__(self, layout: Layout) -> None:
        self.path = layout.run_path(CACHE_FILE)
        self.layout = layout
        self.entries: dict[str, dict] = {}
        self.changed = False
        self._stamps: dict[str, list[int] | None] = {}  # one stat per path per run (common.toml...)
        try:
            with open(self.path, "rb") as f:
                data = cjson.loads(f.read())
            if data.get("version") == VERSION and isinstance(data.get("entries"), dict):
                # Only entries of the shape this code writes (another version's, or a file
                # edited by hand, are re-made).
                self.entries = {name: entry for name, entry in data["entries"].items() if _well_formed(entry)}
        except (OSError, ValueError, AttributeError):
            pass

    def get(self, name: str) -> dict:
        """{"values": {key: value}, "template": str, "error": str | None} for NAME."""
        entry = self.entries.get(name)
        if entry is not None and self._still_valid(entry):
            return entry
        entry = self._summarise(name)
        self.entries[name] = entry
        self.changed = True
        return entry

    def _still_valid(self, entry: dict) -> bool:
        return all(self._stamp(path) == stamp for path, stamp in entry["files"])

    def _stamp(self, path: str) -> list[int] | None:
        if path not in self._stamps:
            self._stamps[path] = _stamp(path)
        return self._stamps[path]

    def _summarise(self, name: str) -> dict:
        from lxctools.config.model import ContainerConfig
        from lxctools.errors import PylError
        path = self.layout.config_file_path(name)
        values: dict = {}
        error = None
        files = [path] if path else []
        if path:
            cfg = None
            try:
                cfg = ContainerConfig.load(path)
                full = cfg.values()
                values = {k: full[k] for k in KEYS if k in full}
            except PylError as err:
                error = err.message
            if cfg is not None:
                files = cfg.sources() or files
        stamps = [[p, _stamp(p)] for p in files]
        return {"files": stamps, "values": values, "error": error, "template": _template_of(path)}

    def save(self) -> None:
        """Write the cache if anything changed, leaving out racy entries and those of
        containers whose config is gone. Never raises: the cache is only a speed-up."""
        if not self.changed:
            return
        now_ns = time.time_ns()
        racy = int(_RACY_SECONDS * 1e9)
        entries = {name: entry for name, entry in self.entries.items()
                   if entry["files"] and os.path.exists(entry["files"][0][0])
                   and all(stamp is not None and now_ns - stamp[2] > racy for _, stamp in entry["files"])}
        try:
            from pathlib import Path
            from lxctools.state import write_json_atomic
            write_json_atomic(Path(self.path), {"version": VERSION, "entries": entries})
        except OSError:
            pass


def _well_formed(entry: object) -> bool:
    # Everything pyl-ls takes from an entry, to the type of each value (a config's values are
    # strings or lists of strings): a trusted entry is used without a second look.
    from lxctools.state import are_config_values
    return (isinstance(entry, dict) and are_config_values(entry.get("values"))
            and isinstance(entry.get("template"), str) and isinstance(entry.get("files"), list)
            and "error" in entry and (entry["error"] is None or isinstance(entry["error"], str))
            and all(isinstance(f, list) and len(f) == 2 and isinstance(f[0], str) and "\0" not in f[0]
                    and (f[1] is None or (isinstance(f[1], list) and len(f[1]) == 3
                                          and all(type(n) is int for n in f[1])))
                    for f in entry["files"]))


def _template_of(path: str | None) -> str:
    if not path:
        return "-"
    try:
        with open(path) as f:
            first = f.readline()
    except OSError:
        return "-"
    if first.startswith(TEMPLATE_LINE):
        return first[len(TEMPLATE_LINE):].strip().rsplit("/", 1)[-1]
    return "-"
