"""pyl's TOML config format: nested tables whose flattened dotted paths are LXC key names.

    [lxc]
    include = ["/etc/pyl/common.toml"]
    "autodev.tmpfs.size" = 500000      # leaf-and-prefix keys are quoted dotted keys
    [lxc.uts]
    name = "c1"
    [lxc.net.0]
    type = "veth"
    "ipv4.address" = ["10.0.3.5/24"]   # multi-valued keys are arrays, one element per line

Semantics, given that a TOML table is unordered: `lxc.include` files are processed first,
then group clears (`"lxc.net" = ""`), then every other key in document order; an array
element "" clears what came before (as an empty LXC line does). Integers and booleans
become "N" / "1" / "0". Top-level tables other than [lxc] are ignored, like non-lxc lines.

Reading uses tomlread (tomllib's results without its ~18 ms import); editing (which keeps the
user's comments) and writing new files use tomlkit, imported only then.
"""

from __future__ import annotations

from lxctools.config import keys, tomlread
from lxctools.config.lxcformat import Entry
from lxctools.errors import ConfigError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

_BARE = tomlread.BARE_KEY_CHARS


def load_toml(text: str, source: str) -> dict:
    try:
        return tomlread.loads(text)
    except tomlread.TOMLDecodeError as exc:
        # The message ends with "(at line N, column M)".
        raise ConfigError(f"{source}: invalid TOML: {exc}") from None


def _scalar(value: object, key: str, where: Callable[[], str]) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (int, str)):
        return str(value)
    raise ConfigError(f"{where()}: {key}: unsupported TOML value {value!r} "
                      "(use a string, integer, boolean or an array of those)")


class KeyLines:
    """Where each key of a TOML text is written (1-based lines), found on first use: only an
    error message needs it. A key written inside an inline table or array is found at the line
    of the outermost name that holds it; a text the line scan does not follow has no lines."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._lines: dict[str, int] | None = None

    def find(self, key: str) -> int | None:
        if self._lines is None:
            self._lines = {}
            try:
                for line in _plain_lines(self.text):
                    if line.kind == "key":
                        self._lines.setdefault(line.key, line.index + 1)
            except _NotPlain:
                pass
        while key:
            if key in self._lines:
                return self._lines[key]
            key = key.rpartition(".")[0]
        return None


def flatten(data: dict, source: str, text: str | None = None) -> list[Entry]:
    """The document's own entries in processing order (includes, group clears, the rest).
    TEXT, the document's own, lets an error name the line of a key."""
    includes: list[Entry] = []
    clears: list[Entry] = []
    rest: list[Entry] = []
    lines_of = KeyLines(text) if text is not None else None

    def emit(raw_key: str, value: object) -> None:
        locate = (lambda: lines_of.find(raw_key)) if lines_of is not None else None

        def where() -> str:  # called only for an error: the line scan is for errors alone
            line = locate() if locate is not None else None
            return f"{source}:{line}" if line else source

        key = keys.canonical(raw_key)
        spec = keys.find(key)
        if spec is None:
            raise ConfigError(f"{where()}: {keys.unknown_key_message(key)}")
        if isinstance(value, list):
            if not spec.multi and len(value) > 1:
                raise ConfigError(f"{where()}: {key} takes a single value, not an array")
            lines = [_scalar(item, key, where) for item in value]
        else:
            lines = [_scalar(value, key, where)]
        target = includes if key == "lxc.include" else clears if spec.group_clear else rest
        target.extend(Entry(key, line, source, None, locate) for line in lines)

    def walk(prefix: str, table: dict) -> None:
        for name, value in table.items():
            key = f"{prefix}.{name}"
            if isinstance(value, dict):
                walk(key, value)
            else:
                emit(key, value)

    for name, value in data.items():
        if name != "lxc" and not name.startswith("lxc."):
            continue
        if isinstance(value, dict):
            walk(name, value)
        elif name == "lxc":
            raise ConfigError(f"{source}: 'lxc' must be a table")
        else:
            emit(name, value)
    return includes + clears + rest


# --- writing -----------------------------------------------------------------------

def placement(key: str, leaves: set[str] | frozenset[str]) -> tuple[str, str]:
    """(table path, key inside it) for KEY, given every leaf key of the document.

    Canonical table: lxc.net.N for network keys, lxc.A for lxc.A.rest, lxc for lxc.A.
    When a leaf is also a prefix of that table (lxc.autodev vs lxc.autodev.tmpfs.size,
    lxc.net vs lxc.net.0.type) the key moves up to the parent as a quoted dotted key.
    """
    net = keys.net_index(key)
    parts = key.split(".")
    if net is not None and net[1]:
        table = f"lxc.net.{net[0]}"
    elif len(parts) > 2:
        table = "lxc." + parts[1]
    else:
        table = "lxc"
    while table != "lxc":
        tparts = table.split(".")
        conflict = next((p for p in (".".join(tparts[:i]) for i in range(2, len(tparts) + 1))
                         if p in leaves), None)
        if conflict is None:
            break
        table = conflict.rsplit(".", 1)[0]
    return table, key[len(table) + 1:]


def toml_key(name: str) -> str:
    return name if name and all(c in _BARE for c in name) else toml_string(name)


def toml_string(value: str) -> str:
    out = ['"']
    for c in value:
        if c == '"':
            out.append('\\"')
        elif c == "\\":
            out.append("\\\\")
        elif c == "\n":
            out.append("\\n")
        elif c == "\t":
            out.append("\\t")
        elif ord(c) < 0x20 or ord(c) == 0x7F:
            out.append(f"\\u{ord(c):04x}")
        else:
            out.append(c)
    out.append('"')
    return "".join(out)


def typed(spec: keys.KeySpec, value: str) -> str | int | bool:
    """VALUE as the TOML scalar its key's kind suggests, if that round-trips exactly."""
    if spec.kind == "bool" and value in ("0", "1"):
        return value == "1"
    if spec.kind == "int" and value.lstrip("-").isascii() and value.lstrip("-").isdigit() and str(int(value)) == value \
            and -2**63 <= int(value) < 2**63:
        return int(value)
    return value


def _literal(obj: str | int | bool) -> str:
    if isinstance(obj, bool):
        return "true" if obj else "false"
    if isinstance(obj, int):
        return str(obj)
    return toml_string(obj)


def value_text(key: str, values: list[str]) -> str:
    spec = keys.lookup(key)
    items = [_literal(typed(spec, v)) for v in values]
    if not spec.multi:
        return items[-1]
    if len(items) <= 1:
        return "[" + "".join(items) + "]"
    return "[\n" + "".join(f"    {item},\n" for item in items) + "]"


def _comment(raw: str) -> str | None:
    text = raw.strip()
    if not text:
        return None
    return text if text.startswith("#") else "# " + text


def render(items: list[tuple[str, list[str], list[str]]], header: list[str], trailer: list[str]) -> str:
    """TOML text for ITEMS = (key, line values, comment lines before it), grouped by table."""
    leaves = {key for key, _, _ in items}
    tables: dict[str, list[str]] = {"lxc": []}
    for key, values, comments in items:
        table, name = placement(key, leaves)
        body = tables.setdefault(table, [])
        body.extend(c for c in (_comment(raw) for raw in comments) if c)
        body.append(f"{toml_key(name)} = {value_text(key, values)}")
    out = [c for c in (_comment(raw) for raw in header) if c]
    if out:
        out.append("")
    for table, body in tables.items():
        if not body:
            continue
        out.append("[" + ".".join(toml_key(p) for p in _table_parts(table)) + "]")
        out.extend(body)
        out.append("")
    out.extend(c for c in (_comment(raw) for raw in trailer) if c)
    return "\n".join(out).rstrip("\n") + "\n"


def _table_parts(table: str) -> list[str]:
    return table.split(".")


class _NotPlain(Exception):
    """The text holds TOML the line scanner does not follow: the caller uses tomlkit."""


class _Line:
    """One construct of a plain TOML text: a comment line, a [table] header, or `key = value`."""

    __slots__ = ("kind", "index", "table", "key_text", "key", "value", "comment")

    def __init__(self, kind: str, index: int, table: str, key_text: str = "", key: str = "",
                 value: str = "", comment: str | None = None) -> None:
        self.kind = kind            # "comment", "table" or "key"
        self.index = index          # first line of it in the text
        self.table = table          # the table it is in (for "table": the header's own)
        self.key_text = key_text    # the key as written, e.g. '"ipv4.address"' or 'ipv4.address'
        self.key = key              # the full dotted key, unquoted: lxc.net.0.ipv4.address
        self.value = value          # the value's text (lines joined for a multi-line array)
        self.comment = comment      # a trailing '# ...' on the line


def _plain_lines(text: str):
    """The constructs of TOML as pyl writes it, in order: [table] headers of bare parts,
    `name = value` lines (bare, dotted or fully quoted names; arrays may span lines), comment
    lines. Raises _NotPlain for anything else ([[...]], quoted header parts, multi-line strings,
    a line that is none of these), so the edits and walks built on it fall back to tomlkit."""
    if '"""' in text or "'''" in text:
        raise _NotPlain()
    lines = text.split("\n")
    table = ""
    i = 0
    while i < len(lines):
        index, line = i, lines[i].strip()
        i += 1
        if not line:
            continue
        if line.startswith("#"):
            yield _Line("comment", index, table, comment=line)
            continue
        code, comment = _split_comment(line)
        if code.startswith("["):
            if code.startswith("[[") or '"' in code or "'" in code or not code.endswith("]"):
                raise _NotPlain()
            table = ".".join(part.strip() for part in code[1:-1].split("."))
            yield _Line("table", index, table, comment=comment)
            continue
        name, eq, value = code.partition("=")
        if not eq:
            raise _NotPlain()
        while _bracket_balance(value) > 0 and i < len(lines):  # a multi-line array
            more, _ = _split_comment(lines[i].strip())
            value += "\n" + more
            i += 1
        name = name.strip()
        if name.startswith('"') and name.endswith('"') and name.count('"') == 2:
            bare = name[1:-1]
        elif all(c in _BARE or c == "." for c in name):
            bare = ".".join(part.strip() for part in name.split("."))
        else:
            raise _NotPlain()
        key = f"{table}.{bare}" if table else bare
        yield _Line("key", index, table, lines[index][:lines[index].index("=")].rstrip(), key,
                    value.strip(), comment)


def _defining_lines(text: str, key: str) -> tuple[list[_Line], list[str]]:
    """(the single-line `name = value` constructs defining KEY, the table headers in document
    order); _NotPlain also when KEY's definition spans lines."""
    hits: list[_Line] = []
    headers: list[str] = []
    for item in _plain_lines(text):
        if item.kind == "table":
            headers.append(item.table)
        elif item.kind == "key" and item.key.startswith("lxc") and keys.canonical(item.key) == key:
            if "\n" in item.value:
                raise _NotPlain()
            hits.append(item)
    return hits, headers


def _appendable(table: str, headers: list[str]) -> bool:
    """Whether [TABLE] may go at the end of the document: its sibling tables (lxc.net.1 for
    lxc.net.2), if any, must be the last ones already. tomlkit cannot read a document whose
    [lxc.net.N] tables are split by another table (it reports "net" defined twice), although
    TOML allows it, and a later edit may need tomlkit."""
    parent = table.rsplit(".", 1)[0]
    if parent == "lxc":
        return True
    siblings = [i for i, header in enumerate(headers) if header.startswith(parent + ".")]
    return not siblings or siblings == list(range(siblings[0], len(headers)))


def _unquoted(text: str):
    """(index, character) of TEXT outside its TOML strings, up to and including the '#' that
    starts a comment. In a "basic" string a backslash escapes the next character ("\\"" is one
    quote, not the string's end); a 'literal' string has no escapes."""
    quote = ""
    escaped = False
    for index, c in enumerate(text):
        if quote:
            if escaped:
                escaped = False
            elif c == "\\" and quote == '"':
                escaped = True
            elif c == quote:
                quote = ""
        elif c in "\"'":
            quote = c
        else:
            yield index, c
            if c == "#":
                return


def _split_comment(line: str) -> tuple[str, str | None]:
    """(code, trailing '# comment' or None) of one line, minding quoted strings."""
    for index, c in _unquoted(line):
        if c == "#":
            return line[:index].rstrip(), line[index:].strip()
    return line, None


def _bracket_balance(text: str) -> int:
    """Open minus closed square brackets outside strings and comments (array nesting)."""
    return sum(1 if c == "[" else -1 for _, c in _unquoted(text) if c in "[]")


# --- the document ---------------------------------------------------------------------

class TomlDocument:
    """A pyl TOML config file, unexpanded. Edits go through tomlkit to keep comments."""

    fmt = "toml"

    def __init__(self, text: str, source: str = "<string>") -> None:
        self.source = source
        self.text = text
        self._entries = flatten(load_toml(text, source), source, text)
        self._tk = None

    def entries(self) -> list[Entry]:
        return list(self._entries)

    def to_text(self) -> str:
        return self.text

    # --- tomlkit plumbing ---
    def _doc(self):
        if self._tk is None:
            import tomlkit

            self._tk = tomlkit.parse(self.text)
        return self._tk

    def _commit(self) -> None:
        self.text = self._tk.as_string()
        self._entries = flatten(load_toml(self.text, self.source), self.source, self.text)

    def _leaves(self) -> list[tuple[object, str, str]]:
        """(owning table, key inside it, full key) for every lxc leaf, in document order."""
        from tomlkit.items import Table

        out: list[tuple[object, str, str]] = []

        def walk(owner, body, prefix: str) -> None:
            for k, item in body:
                if k is None:
                    continue
                name = k.key
                full = f"{prefix}.{name}" if prefix else name
                if prefix == "" and name != "lxc" and not name.startswith("lxc."):
                    continue
                if isinstance(item, Table):
                    walk(item, item.value.body, full)
                else:
                    out.append((owner, name, keys.canonical(full)))

        doc = self._doc()
        walk(doc, doc.body, "")
        return out

    def _item(self, key: str, values: list[str]):
        import tomlkit

        spec = keys.lookup(key)
        if not spec.multi:
            return typed(spec, values[-1])
        array = tomlkit.array()
        array.extend(typed(spec, v) for v in values)
        if len(values) > 1:
            array.multiline(True)
        return array

    def _table(self, path: str):
        """The tomlkit table at PATH, created (intermediate ones as super tables) if missing."""
        import tomlkit
        from tomlkit.items import Table

        container = self._doc()
        parts = path.split(".")
        for i, part in enumerate(parts):
            if part in container and isinstance(container[part], (Table, dict)):
                container = container[part]
                continue
            if part in container:
                return None   # a leaf where a table is needed: caller resolves the conflict
            table = tomlkit.table(is_super_table=i < len(parts) - 1)
            container[part] = table
            container = container[part]
        return container

    def _prune(self) -> None:
        """Drop tables left empty (no keys, no comments) by removals."""
        from tomlkit.items import Comment, Table

        def prune(owner) -> bool:
            body = owner.value.body if isinstance(owner, Table) else owner.body
            for k, item in list(body):
                if k is not None and isinstance(item, Table) and prune(item):
                    del owner[k.key]
            return isinstance(owner, Table) and not any(
                k is not None or isinstance(item, Comment) for k, item in owner.value.body)

        prune(self._doc())

    def _comments_and_entries_by_text(self) -> list[tuple[str | None, Entry | None]] | None:
        """comments_and_entries from _plain_lines, without tomlkit; None when the text is not
        plain, or when the scan did not account for every entry exactly once."""
        first = [e for e in self._entries if e.key == "lxc.include" or keys.lookup(e.key).group_clear]
        out: list[tuple[str | None, Entry | None]] = [(None, e) for e in first]
        first_keys = {e.key for e in first}
        pending: dict[str, list[Entry]] = {}
        for e in self._entries:
            if e.key not in first_keys:
                pending.setdefault(e.key, []).append(e)
        try:
            for item in _plain_lines(self.text):
                in_lxc = item.table == "lxc" or item.table.startswith("lxc.")
                if item.kind == "comment":
                    out.append((item.comment, None))
                elif item.kind == "table":
                    if item.comment and in_lxc:
                        out.append((item.comment, None))
                elif item.key == "lxc" or item.key.startswith("lxc."):
                    if item.comment:
                        out.append((item.comment, None))
                    key = keys.canonical(item.key)
                    if key in first_keys:
                        continue
                    parsed = tomlread.loads(f"v = {item.value}")["v"]
                    count = len(parsed) if isinstance(parsed, list) else 1
                    queue = pending.get(key, [])
                    if len(queue) < count:
                        return None
                    out.extend((None, e) for e in queue[:count])
                    del queue[:count]
        except (_NotPlain, tomlread.TOMLDecodeError):
            return None
        if any(pending.values()):
            return None
        return out

    # --- edits without tomlkit ---
    def _set_key_by_text(self, key: str, values: list[str]) -> bool:
        """set_key for the plain cases pyl-create and pyl-copy make, on the text itself: one
        single-line `name = value` replaced in place, or a key whose table does not exist yet
        appended as a new table. The result is re-read and must hold exactly the old entries
        with KEY's values replaced; anything else (or anything this line scan does not follow)
        returns False with the document unchanged, and tomlkit does the edit. Saves importing
        tomlkit (~10 ms) and parsing with it."""
        if not values or self._tk is not None:
            return False
        try:
            hits, headers = _defining_lines(self.text, key)
        except _NotPlain:
            return False
        if len(hits) == 1:
            hit = hits[0]
            if hit.comment is not None:
                return False  # a trailing comment would be lost
            lines = self.text.split("\n")
            lines[hit.index] = f"{hit.key_text} = {value_text(key, values)}"
            text = "\n".join(lines)
        elif not hits:
            table, name = placement(key, {e.key for e in self._entries} | {key})
            if table in headers or not _appendable(table, headers):
                return False  # inserting into an existing table or a group: tomlkit places it
            header = "[" + ".".join(toml_key(p) for p in _table_parts(table)) + "]"
            text = self.text.rstrip("\n") + f"\n\n{header}\n{toml_key(name)} = {value_text(key, values)}\n"
        else:
            return False
        try:
            entries = flatten(load_toml(text, self.source), self.source)
        except ConfigError:
            return False
        expected = [(e.key, e.value) for e in self._entries if e.key != key] + [(key, v) for v in values]
        if sorted((e.key, e.value) for e in entries) != sorted(expected):
            return False
        self.text, self._entries = text, entries
        return True

    # --- editing API (same as LxcDocument) ---
    def own_values(self, key: str) -> list[str]:
        return [e.value for e in self._entries if e.key == key]

    def set_key(self, key: str, values: list[str]) -> None:
        if self._set_key_by_text(key, values):
            return
        leaves = self._leaves()
        matches = [(owner, name) for owner, name, full in leaves if full == key]
        item = self._item(key, values)
        if matches:
            owner, name = matches[0]
            owner[name] = item
            for owner, name in matches[1:]:
                del owner[name]
            self._commit()
            return
        names = {full for _, _, full in leaves} | {key}
        table_path, name = placement(key, names)
        table = self._table(table_path)
        # A table already sits where this key wants to be a leaf (e.g. [lxc.autodev] when
        # setting lxc.autodev): move the keys below it so they become quoted dotted keys.
        blocking = [full for _, _, full in leaves if full.startswith(key + ".")]
        if blocking and table is not None and name in table:
            moved = [(full, self.own_values(full)) for full in blocking]
            self.remove_keys(lambda k: k in blocking, commit=False)
            self._prune()
            table = self._table(table_path)
            table[name] = item
            self._commit()
            for full, vals in moved:
                self.set_key(full, vals)
            return
        if table is None:
            raise ConfigError(f"{self.source}: cannot place {key}: a value sits where a table is needed")
        table[name] = item
        self._commit()

    def append_key(self, key: str, value: str) -> None:
        self.set_key(key, self.own_values(key) + [value])

    def move_to_end(self, key: str) -> None:
        """Order of keys does not matter in TOML (includes are always processed first)."""

    def remove_keys(self, predicate, commit: bool = True) -> None:
        for owner, name, full in reversed(self._leaves()):
            if predicate(full):
                del owner[name]
        self._prune()
        if commit:
            self._commit()

    def add_include(self, path: str) -> None:
        self.append_key("lxc.include", path)

    def comments_and_entries(self):
        """(comment_or_None, Entry_or_None) pairs in processing order, for conversion to LXC."""
        if self._tk is None:
            by_text = self._comments_and_entries_by_text()
            if by_text is not None:
                yield from by_text
                return
        from tomlkit.items import Comment, Table

        first = [e for e in self._entries if e.key == "lxc.include" or keys.lookup(e.key).group_clear]
        for e in first:
            yield None, e
        first_keys = {e.key for e in first}
        pending: dict[str, list[Entry]] = {}
        for e in self._entries:
            pending.setdefault(e.key, []).append(e)

        def walk(body, prefix: str):
            for k, item in body:
                if k is None:
                    if isinstance(item, Comment):
                        yield item.as_string().strip(), None
                    continue
                full = f"{prefix}.{k.key}" if prefix else k.key
                if prefix == "" and k.key != "lxc" and not k.key.startswith("lxc."):
                    continue
                if isinstance(item, Table):
                    if item.trivia.comment:
                        yield item.trivia.comment.strip(), None
                    yield from walk(item.value.body, full)
                    continue
                if getattr(item, "trivia", None) is not None and item.trivia.comment:
                    yield item.trivia.comment.strip(), None
                if full in first_keys:
                    continue
                # Duplicated spellings of one key were flattened in document order.
                queue = pending.get(full, [])
                count = len(item) if isinstance(item, list) else 1
                for e in queue[:count]:
                    yield None, e
                del queue[:count]

        yield from walk(self._doc().body, "")
