"""LXC's `key = value` config format: parse, edit in place, serialise (reference §4.1).

An LxcDocument is the *unexpanded* file: every line is kept verbatim (comments, blank
lines, non-lxc lines, include lines) and only edited lines are regenerated, so saving
after an edit preserves everything else. Entries are produced in line order with legacy
key names already mapped to current ones.
"""

from __future__ import annotations

from lxctools.config import keys
from lxctools.config.legacy import NetworkNumbering, modernize
from lxctools.errors import ConfigError


class Entry:
    """One effective `key = value` line of some document, with where it came from."""

    __slots__ = ("key", "value", "source", "lineno", "locate")

    def __init__(self, key: str, value: str, source: str, lineno: int | None, locate=None) -> None:
        self.key = key
        self.value = value
        self.source = source
        self.lineno = lineno
        # TOML: a callable that finds the line when an error needs it (the TOML reader gives no
        # line numbers, and scanning every config for them would cost each start for nothing)
        self.locate = locate

    def where(self) -> str:
        if self.lineno is None and self.locate is not None:
            self.lineno, self.locate = self.locate(), None
        return f"{self.source}:{self.lineno}" if self.lineno else self.source

    def __repr__(self) -> str:
        return f"Entry({self.key!r}, {self.value!r}, {self.where()!r})"


class LxcLine:
    __slots__ = ("raw", "key", "value")

    def __init__(self, raw: str, key: str | None = None, value: str | None = None) -> None:
        self.raw = raw        # text without the newline
        self.key = key        # current key name for lxc.* lines, else None
        self.value = value


def strip_quotes(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def parse_line(raw: str, source: str, lineno: int, numbering: NetworkNumbering) -> LxcLine:
    """Parse one line; ConfigError naming SOURCE:LINENO for a malformed or unknown lxc.* line."""
    text = raw.strip()
    if not text.startswith("lxc."):
        return LxcLine(raw)   # blank, comment, or a non-lxc line (LXC ignores those)
    key, eq, value = text.partition("=")
    key = key.strip()
    if not eq:
        raise ConfigError(f"{source}:{lineno}: missing '=' in '{text}'")
    current = modernize(key, numbering)
    if current is not None:
        current = keys.canonical(current)
    if current is None:
        return LxcLine(raw)   # removed legacy key (lxc.pivotdir, ...): ignored like LXC 2.1
    if keys.find(current) is None:
        raise ConfigError(f"{source}:{lineno}: {keys.unknown_key_message(key)}")
    return LxcLine(raw, current, strip_quotes(value.strip()))


def format_line(key: str, value: str) -> str:
    """`key = value`, quoting VALUE when reading it back would otherwise change it."""
    if "\n" in value:
        raise ConfigError(f"{key}: a value in LXC format cannot contain a line break")
    if value != value.strip() or strip_quotes(value) != value:
        value = f'"{value}"'
    return f"{key} = {value}" if value else f"{key} ="


class LxcDocument:
    """An LXC-format config file, unexpanded."""

    fmt = "lxc"

    def __init__(self, text: str, source: str = "<string>") -> None:
        self.source = source
        numbering = NetworkNumbering()
        # Split on \n only, as LXC does (str.splitlines also splits on \v, \x1c, \u2028...).
        raw_lines = text.split("\n")
        if raw_lines and raw_lines[-1] == "":
            raw_lines.pop()
        self.lines = [parse_line(raw, source, n, numbering) for n, raw in enumerate(raw_lines, 1)]

    # --- reading ---
    def entries(self) -> list[Entry]:
        return [Entry(line.key, line.value or "", self.source, n)
                for n, line in enumerate(self.lines, 1) if line.key is not None]

    def to_text(self) -> str:
        return "".join(line.raw + "\n" for line in self.lines)

    # --- editing ---
    def _positions(self, key: str) -> list[int]:
        return [i for i, line in enumerate(self.lines) if line.key == key]

    def _insert_point(self, key: str) -> int:
        """After the last line of the same section (lxc.net.N.*, lxc.A.*), else the end."""
        net = keys.net_index(key)
        if net is not None:
            group = f"lxc.net.{net[0]}."
        else:
            group = ".".join(key.split(".")[:2]) + "."
        for i in range(len(self.lines) - 1, -1, -1):
            line_key = self.lines[i].key
            if line_key is not None and line_key != "lxc.include" and (line_key + ".").startswith(group):
                return i + 1
        return len(self.lines)

    def set_key(self, key: str, values: list[str]) -> None:
        """Make KEY's own lines exactly VALUES, at the place of its first existing line."""
        positions = self._positions(key)
        at = positions[0] if positions else self._insert_point(key)
        for i in reversed(positions):
            del self.lines[i]
        self.lines[at:at] = [LxcLine(format_line(key, v), key, v) for v in values]

    def append_key(self, key: str, value: str) -> None:
        positions = self._positions(key)
        at = positions[-1] + 1 if positions else self._insert_point(key)
        self.lines.insert(at, LxcLine(format_line(key, value), key, value))

    def move_to_end(self, key: str) -> None:
        moved = [self.lines[i] for i in self._positions(key)]
        self.lines = [line for line in self.lines if line.key != key] + moved

    def remove_keys(self, predicate) -> None:
        self.lines = [line for line in self.lines if line.key is None or not predicate(line.key)]

    def add_include(self, path: str) -> None:
        self.append_key("lxc.include", path)

    def comments_and_entries(self):
        """(comment_or_None, Entry_or_None) pairs in line order, for format conversion."""
        for n, line in enumerate(self.lines, 1):
            if line.key is not None:
                yield None, Entry(line.key, line.value or "", self.source, n)
            else:
                yield line.raw, None
