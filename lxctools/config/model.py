"""ContainerConfig: one container's configuration, as a document and as flat values.

The object holds the *unexpanded* document (LXC or TOML format) so edits keep comments
and include lines, and computes the expanded, validated flat mapping that runtime code
consumes (`values()`: LXC key -> str, or list[str] for multi-valued keys, one element per
config line). Every key and value goes through the table in lxctools.config.keys.

Import cost matters (every command loads a config): the TOML reader is pyl's own
(config.tomlread: tomllib's ~18 ms import is more than most commands' own work), tomlkit is
imported only to edit or write TOML, difflib only to suggest a key name.
"""

from __future__ import annotations

import os

from lxctools.config import keys
from lxctools.config.legacy import RENAMED
from lxctools.config.lxcformat import Entry, LxcDocument
from lxctools.errors import ConfigError, NotFoundError, PermissionDeniedError, PylError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path

    from lxctools.config.tomlformat import TomlDocument

Values = dict  # dict[str, str | list[str]]

_MAX_INCLUDE_DEPTH = 32


def read_config_text(path: str, where: str | None = None) -> str:
    """A config file's text (a container's, an included one, a system config): missing 66,
    unreadable 77, not UTF-8 or starting with a byte-order mark 78, each naming the file."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        prefix = f"{where}: " if where else ""
        raise NotFoundError(f"{prefix}config file '{path}' does not exist") from None
    except PermissionError as exc:
        raise PermissionDeniedError(f"cannot read '{path}': {exc.strerror}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read '{path}': {getattr(exc, 'strerror', None) or exc}") from None
    if text.startswith("\ufeff"):
        # Some editors write one. LXC would read "\ufefflxc.KEY" as a line that is not lxc.*
        # and drop it without a word; TOML readers fail on line 1, column 1.
        raise ConfigError(f"{path}:1: the file starts with a UTF-8 byte-order mark (BOM)",
                          hint="save it as UTF-8 without a BOM (e.g. sed -i '1s/^\\xEF\\xBB\\xBF//' FILE)")
    return text


def _looks_like_toml(text: str) -> bool:
    """A file with a `[table]` header line that parses as TOML with an lxc table is TOML."""
    if not any(line.lstrip().startswith("[") for line in text.splitlines()):
        return False
    from lxctools.config import tomlread

    try:
        data = tomlread.loads(text)
    except tomlread.TOMLDecodeError:
        return False
    return isinstance(data.get("lxc"), dict)


def _document(text: str, fmt: str, source: str) -> LxcDocument | TomlDocument:
    if fmt == "lxc":
        return LxcDocument(text, source)
    if fmt == "toml":
        from lxctools.config.tomlformat import TomlDocument

        return TomlDocument(text, source)
    raise ConfigError(f"unknown config format '{fmt}' (expected lxc or toml)")


# Included files, parsed once per process while unchanged: fifty containers sharing
# common.toml (pyl-ls -f, the supervisor starting them) parse it once, not fifty times.
_INCLUDED: dict[str, tuple[tuple[int, int, int], LxcDocument | TomlDocument]] = {}


def _read_document(path: str, where: str | None = None) -> LxcDocument | TomlDocument:
    try:
        st = os.stat(path)
        stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
    except OSError:
        stamp = None  # read_config_text reports it
    cached = _INCLUDED.get(path)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    text = read_config_text(path, where)
    doc = _document(text, "toml" if path.endswith(".toml") else "lxc", path)
    if stamp is not None:
        _INCLUDED[path] = (stamp, doc)
    return doc


def _include_targets(entry: Entry, base_dir: str | None) -> list[str]:
    path = entry.value
    if not os.path.isabs(path):
        path = os.path.join(base_dir or os.getcwd(), path)
    if os.path.isdir(path):
        # LXC 5 uses readdir order; sorted is what its documentation promises.
        names = sorted(n for n in os.listdir(path) if n.endswith((".conf", ".toml")))
        return [os.path.join(path, n) for n in names if os.path.isfile(os.path.join(path, n))]
    if path.endswith("/"):
        return []   # a missing include directory is ignored
    if not os.path.exists(path):
        raise ConfigError(f"{entry.where()}: included file '{entry.value}' does not exist")
    return [path]


def random_hwaddr(template: str) -> str:
    """Replace every x/X of TEMPLATE with a random hex digit.

    If the first octet has a placeholder in its low nibble, the result is a locally
    administered unicast address (bit 1 set, bit 0 clear) so it cannot clash with a vendor MAC.
    """
    rnd = os.urandom(len(template))
    digits = [format(b & 0xF, "x") if c in "xX" else c for c, b in zip(template, rnd)]
    if len(template) >= 2 and template[1] in "xX":
        digits[1] = format((int(digits[1], 16) & 0xC) | 0x2, "x")
    return "".join(digits)


def _canonical(key: str) -> str:
    return keys.canonical(RENAMED.get(key, key))


def _invalid(where: str | None, key: str, value: str, exc: ValueError) -> ConfigError:
    prefix = f"{where}: " if where else ""
    return ConfigError(f"{prefix}invalid value '{value}' for {key}: {exc}")


# Keys whose relative values are resolved against the folder of the file that sets them.
RELATIVE_PATH_KEYS = frozenset({"lxc.seccomp.profile", "lxc.mount.fstab"})


class ContainerConfig:
    """A container's config: the unexpanded document plus `-s` overrides."""

    def __init__(self, doc: LxcDocument | TomlDocument, *, base_dir: str | None = None) -> None:
        self._doc = doc
        self._base_dir = base_dir
        self._overrides: list[Entry] = []
        self._cache: Values | None = None
        self._hw: dict[str, str] = {}
        self._read_paths: list[str] = []

    # --- construction ---
    @classmethod
    def load(cls, path: str | Path) -> ContainerConfig:
        """Load a config file, or a container folder's `config.toml` / `config`.

        Format: `.toml` suffix, or content with a [table] header parsing as TOML with an
        [lxc] table -> TOML; otherwise LXC format.
        """
        path = os.fspath(path)
        if os.path.isdir(path):
            for name in ("config.toml", "config"):
                if os.path.isfile(os.path.join(path, name)):
                    path = os.path.join(path, name)
                    break
            else:
                raise NotFoundError(f"no config.toml or config in '{path}'")
        text = read_config_text(path)
        fmt = "toml" if path.endswith(".toml") or _looks_like_toml(text) else "lxc"
        return cls(_document(text, fmt, path), base_dir=os.path.dirname(os.path.abspath(path)))

    @classmethod
    def from_text(cls, text: str, *, fmt: str = "lxc", source: str = "<string>",
                  base_dir: str | Path | None = None) -> ContainerConfig:
        return cls(_document(text, fmt, source),
                   base_dir=os.fspath(base_dir) if base_dir is not None else None)

    @classmethod
    def empty(cls, fmt: str = "toml") -> ContainerConfig:
        return cls.from_text("", fmt=fmt)

    # --- properties ---
    @property
    def fmt(self) -> str:
        return self._doc.fmt

    @property
    def source(self) -> str:
        return self._doc.source

    # --- expansion and values ---
    def _expand(self, entries: list[Entry], base_dir: str | None, out: list[tuple[Entry, bool]],
                top: bool, stack: tuple[str, ...]) -> None:
        for entry in entries:
            if entry.key != "lxc.include":
                if entry.key in RELATIVE_PATH_KEYS and base_dir and entry.value \
                        and entry.value != "none" and not os.path.isabs(entry.value):
                    # A relative path means "next to the file that says it" (a shared include
                    # naming its seccomp profile works wherever it is installed).
                    entry = Entry(entry.key, os.path.join(base_dir, entry.value), entry.source, entry.lineno,
                                  entry.locate)
                out.append((entry, top))
                continue
            if not entry.value:
                continue
            self._read_paths.append(entry.value if os.path.isabs(entry.value)
                                    else os.path.join(base_dir or os.getcwd(), entry.value))
            for path in _include_targets(entry, base_dir):
                self._read_paths.append(path)
                real = os.path.realpath(path)
                if real in stack or len(stack) > _MAX_INCLUDE_DEPTH:
                    raise ConfigError(f"{entry.where()}: include loop through '{path}'")
                doc = _read_document(path, entry.where())
                self._expand(doc.entries(), os.path.dirname(path), out, False, stack + (real,))

    def expanded(self) -> list[tuple[Entry, bool]]:
        """Every effective line in order, includes expanded; (entry, from_top_level_document)."""
        out: list[tuple[Entry, bool]] = []
        self._read_paths = [self.source] if os.path.isabs(self.source) else []
        start = (os.path.realpath(self.source),) if os.path.isabs(self.source) else ()
        self._expand(self._doc.entries(), self._base_dir, out, True, start)
        out.extend((e, True) for e in self._overrides)
        return out

    def sources(self) -> list[str]:
        """Every path the last expansion depended on: this file, each include as written (a
        directory's listing counts) and each file read through it. Stamps of these tell whether
        values() could change (the pyl-ls cache)."""
        return list(self._read_paths)

    def values(self, *, concrete_hwaddr: bool = False) -> Values:
        """Flat expanded values: key -> str, or list[str] (one element per line) if multi-valued.

        hwaddr placeholders (x) are kept unless CONCRETE_HWADDR, which replaces them with
        random digits (stable for this object; call expand_hwaddr() + save() to persist).
        """
        if self._cache is None:
            self._cache = fold(e for e, _ in self.expanded())
        result = dict(self._cache)
        for k, v in result.items():
            if isinstance(v, list):
                result[k] = list(v)
        if concrete_hwaddr:
            for k, v in result.items():
                if k.endswith(".hwaddr") and isinstance(v, str) and ("x" in v or "X" in v):
                    result[k] = self._hw.setdefault(f"{k}={v}", random_hwaddr(v))
        return result

    def get(self, key: str) -> str | list[str] | None:
        """KEY's expanded value; for lxc.include, the top-level document's include lines."""
        key = _canonical(key)
        keys.lookup(key)
        if key == "lxc.include":
            own = [e.value for e in self._doc.entries() if e.key == key and e.value]
            return own or None
        return self.values().get(key)

    def networks(self) -> dict[int, dict[str, str | list[str]]]:
        """{N: {sub-key: value}} for every lxc.net.N.*, sorted by N."""
        nets: dict[int, dict[str, str | list[str]]] = {}
        for k, v in self.values().items():
            net = keys.net_index(k)
            if net is not None and net[1]:
                nets.setdefault(net[0], {})[net[1]] = v
        return dict(sorted(nets.items()))

    # --- editing (the unexpanded document) ---
    def _changed(self) -> None:
        self._cache = None

    def _included_touches(self, predicate) -> bool:
        try:
            return any(not top and predicate(e.key) for e, top in self.expanded())
        except PylError:
            return False   # broken includes: values() will report them

    def _check(self, key: str, value: str) -> keys.KeySpec:
        spec = keys.lookup(key)
        if value and not spec.group_clear:
            try:
                spec.validate(value)
            except ValueError as exc:
                raise _invalid(None, key, value, exc) from None
        return spec

    def set(self, key: str, value: str) -> None:
        """Set KEY to VALUE (a multi-valued key gets exactly this one value); "" clears."""
        key = _canonical(key)
        spec = self._check(key, value)
        if value == "" or spec.group_clear:
            if value:
                raise ConfigError(f"{key} only takes an empty value (it clears every key below it)")
            self.clear(key)
            return
        if spec.multi and self._included_touches(lambda k: k == key):
            self._doc.set_key(key, ["", value])
        else:
            self._doc.set_key(key, [value])
        self._changed()
        if not spec.multi and self._included_touches(lambda k: k == key) and self.get(key) != value:
            self._doc.move_to_end(key)   # an include after the line would override it
            self._changed()

    def append(self, key: str, value: str) -> None:
        """Add one value to a multi-valued key (on a single-valued key: set)."""
        key = _canonical(key)
        spec = self._check(key, value)
        if not spec.multi or spec.group_clear or value == "":
            self.set(key, value)
            return
        self._doc.append_key(key, value)
        self._changed()

    def clear(self, key: str) -> None:
        """Remove KEY (group keys such as lxc.net or lxc.net.0: everything below) from the document.

        If included files still provide values, an empty `KEY =` line is added so the
        effective value is cleared too.
        """
        key = _canonical(key)
        spec = keys.lookup(key)
        if spec.group_clear:
            def hit(k: str) -> bool:
                return k == key or keys.cleared_by(key, k)
        else:
            def hit(k: str) -> bool:
                return k == key
        self._doc.remove_keys(hit)
        if self._included_touches(hit):
            self._doc.set_key(key, [""])
            self._doc.move_to_end(key)
        self._changed()

    def apply_overrides(self, pairs: list[str]) -> None:
        """Apply `-s KEY=VALUE` settings after the file (not saved)."""
        for pair in pairs:
            key, eq, value = pair.partition("=")
            key, value = _canonical(key.strip()), value.strip()
            if not eq or not key:
                raise ConfigError(f"invalid setting '{pair}' (expected KEY=VALUE)")
            try:
                self._check(key, value)
            except ConfigError as exc:
                raise ConfigError(f"-s {pair}: {exc.message}") from None
            self._overrides.append(Entry(key, value, f"-s {pair}", None))
        self._changed()

    def merge(self, other: ContainerConfig) -> None:
        """Append OTHER's unexpanded items (default config + -f file + template additions)."""
        for comment, entry in other._doc.comments_and_entries():
            if entry is None:
                if self.fmt == "lxc" and comment is not None:
                    self._doc.lines.append(_raw_line(comment))
                continue
            key, value = entry.key, entry.value
            if key == "lxc.include" and value and not os.path.isabs(value) and other._base_dir:
                value = os.path.join(other._base_dir, value)
            if self.fmt == "lxc":
                self._doc.lines.append(_raw_line(_format(key, value), key, value))
            elif key == "lxc.include":
                self._doc.add_include(value)
            elif keys.lookup(key).group_clear:
                self.clear(key)
            elif value and keys.lookup(key).multi:
                self._doc.append_key(key, value)
            else:
                self._doc.set_key(key, [value])
        self._changed()

    def anchor_paths(self) -> None:
        """Rewrite this document's relative include and path values (lxc.include,
        RELATIVE_PATH_KEYS) as absolute paths from its own folder, so the text can move to another
        folder (pyl-create copies the initial config into the container's) and mean the same."""
        if not self._base_dir:
            return
        for key in ("lxc.include", *sorted(RELATIVE_PATH_KEYS)):
            items = [e.value for e in self._doc.entries() if e.key == key]  # this document's own
            fixed = [os.path.join(self._base_dir, v) if v and v != "none" and not os.path.isabs(v) else v
                     for v in items]
            if fixed == items:
                continue
            # This document's own lines of KEY become FIXED, in place (what clear + append
            # would leave, in one edit: a TOML document then needs no tomlkit for it).
            self._doc.set_key(key, fixed)
            self._changed()

    def expand_hwaddr(self) -> dict[str, str]:
        """Replace x placeholders in the top-level document's lxc.net.N.hwaddr; returns what changed."""
        changed: dict[str, str] = {}
        for entry in self._doc.entries():
            net = keys.net_index(entry.key)
            if net is not None and net[1] == "hwaddr" and ("x" in entry.value or "X" in entry.value):
                changed[entry.key] = random_hwaddr(entry.value)
        for key, mac in changed.items():
            self._doc.set_key(key, [mac])
        if changed:
            self._changed()
        return changed

    # --- output ---
    def to_text(self, fmt: str | None = None) -> str:
        """The unexpanded document in FMT (default: its own format), converting if needed."""
        fmt = fmt or self.fmt
        if fmt == self.fmt:
            return self._doc.to_text()
        from lxctools.config import convert

        if fmt == "toml":
            return convert.pairs_to_toml(self._doc.comments_and_entries())
        if fmt == "lxc":
            return convert.pairs_to_lxc(self._doc.comments_and_entries())
        raise ConfigError(f"unknown config format '{fmt}' (expected lxc or toml)")

    def save(self, path: str | Path | None = None, fmt: str | None = None) -> None:
        """Write the document atomically (temp file + fsync + rename, mode 0640)."""
        target = os.fspath(path) if path is not None else self.source
        if not os.path.isabs(target) and target.startswith("<"):
            raise ConfigError("this configuration has no file to save to")
        if fmt is None:
            fmt = "toml" if target.endswith(".toml") else (self.fmt if path is None else "lxc")
        text = self.to_text(fmt)
        atomic_write(target, text)
        if fmt != self.fmt or target != self.source:
            self._doc = _document(text, fmt, target)
            self._base_dir = os.path.dirname(os.path.abspath(target))


def _raw_line(raw: str, key: str | None = None, value: str | None = None):
    from lxctools.config.lxcformat import LxcLine

    return LxcLine(raw, key, value)


def _format(key: str, value: str) -> str:
    from lxctools.config.lxcformat import format_line

    return format_line(key, value)


def fold(entries) -> Values:
    """Apply entries in order (LXC semantics) and validate: the flat values mapping."""
    state: Values = {}
    for e in entries:
        spec = keys.lookup(e.key)
        if spec.group_clear:
            if e.value:
                raise ConfigError(f"{e.where()}: {e.key} only takes an empty value (it clears every key below it)")
            for k in [k for k in state if keys.cleared_by(e.key, k)]:
                del state[k]
            continue
        if e.value == "":
            state.pop(e.key, None)
            continue
        try:
            spec.validate(e.value)
        except ValueError as exc:
            raise _invalid(e.where(), e.key, e.value, exc) from None
        if not spec.multi:
            state[e.key] = e.value
        elif e.key == "lxc.cap.keep" and "none" in e.value.split():
            state[e.key] = [e.value]   # "none" drops everything kept so far
        else:
            state.setdefault(e.key, []).append(e.value)
    return state


def atomic_write(path: str, text: str, mode: int = 0o640) -> None:
    """Write TEXT to PATH crash-safely (kernel.files.replace_file, fsync'd); OSErrors as PylErrors."""
    from lxctools.kernel.files import replace_file
    try:
        replace_file(path, text.encode(), mode, durable=True)
    except OSError as exc:
        if isinstance(exc, PermissionError):
            raise PermissionDeniedError(f"cannot write '{path}': {exc.strerror}") from None
        raise PylError(f"cannot write '{path}': {exc.strerror or exc}") from None
