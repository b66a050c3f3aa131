"""A TOML 1.0 reader for pyl's configs, without what `tomllib` costs at import.

`import tomllib` takes ~18 ms on the benchmark machine (it brings `re`, `enum`, `typing`,
`datetime` and compiles its regular expressions at import): more than a `pyl-create` or a
`pyl-copy -s` spends on everything else of theirs. This reader needs nothing beyond builtins;
`datetime` is imported only when a document holds a date or time (pyl's configs never do, and
reject one when they meet it).

It reads what tomllib reads, the same way: the same documents accepted, the same values, the
same rules for redefining tables, and errors that end in "(at line N, column M)" at the same
place. `tests/unit/test_tomlread.py` holds it to that against tomllib, with generated and
mutated documents.
"""

from __future__ import annotations

__all__ = ["TOMLDecodeError", "loads"]

_ASCII_CTRL = frozenset(chr(i) for i in range(32)) | {chr(127)}
_BAD_IN_LINE = _ASCII_CTRL - {"\t"}          # basic and literal strings, comments
_BAD_IN_MULTILINE = _ASCII_CTRL - {"\t", "\n"}
_WS = frozenset(" \t")
_WS_NL = frozenset(" \t\n")
BARE_KEY_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
_KEY_START = BARE_KEY_CHARS | {'"', "'"}
_DEC = frozenset("0123456789")
_HEX = frozenset("0123456789abcdefABCDEF")
_OCT = frozenset("01234567")
_BIN = frozenset("01")
_RADIX_DIGITS = {"x": _HEX, "o": _OCT, "b": _BIN}   # after a leading 0
_ESCAPES = {"\\b": "\b", "\\t": "\t", "\\n": "\n", "\\f": "\f", "\\r": "\r", '\\"': '"', "\\\\": "\\"}

# What may happen to a table, by how it came to be. A table named by a [header] cannot be
# named by a header again (DECLARED); an inline table or array value cannot change at all,
# nor anything inside it (SEALED, kept for the whole subtree).
_DECLARED = 1
_SEALED = 2


class TOMLDecodeError(ValueError):
    """The text is not TOML; the message ends with where ("(at line N, column M)", "(at end
    of document)"), except for a nesting too deep to follow."""


def loads(text: str) -> dict:
    """The document in `text` as plain dicts, lists and values (as `tomllib.loads`).

    Two texts that make tomllib raise something else than its TOMLDecodeError are
    TOMLDecodeErrors here: an integer past Python's 4,300-digit limit for int() (ValueError
    there) and arrays or inline tables nested past the recursion limit (RecursionError)."""
    parser = _Parser(text)
    try:
        return parser.document()
    except RecursionError:
        raise TOMLDecodeError("Arrays or inline tables nested too deeply") from None


class _Marks:
    """Per-key marks over the tree of table names: a node is [marks, subtree marks, children]."""

    def __init__(self) -> None:
        self.root: dict[str, list] = {}
        self.pending: list[tuple] = []   # DECLARED marks that apply from the next header on

    def mark(self, key: tuple, flag: int, subtree: bool = False) -> None:
        children = self.root
        for part in key[:-1]:
            children = children.setdefault(part, [0, 0, {}])[2]
        node = children.setdefault(key[-1], [0, 0, {}])
        node[1 if subtree else 0] |= flag

    def has(self, key: tuple, flag: int) -> bool:
        children = self.root
        for part in key[:-1]:
            node = children.get(part)
            if node is None:
                return False
            if node[1] & flag:
                return True
            children = node[2]
        node = children.get(key[-1]) if key else None
        return node is not None and bool((node[0] | node[1]) & flag)

    def forget(self, key: tuple) -> None:
        """Drop the marks of `key` and everything under it (a new [[array]] element)."""
        children = self.root
        for part in key[:-1]:
            node = children.get(part)
            if node is None:
                return
            children = node[2]
        children.pop(key[-1], None)

    def apply_pending(self) -> None:
        for key in self.pending:
            self.mark(key, _DECLARED)
        self.pending.clear()


def _nest(root: dict, key: tuple, into_arrays: bool = True) -> dict:
    """The table at `key` under `root`, made where missing; KeyError where a value is in the
    way. With `into_arrays`, an array of tables on the way means its last element."""
    table = root
    for part in key:
        if part not in table:
            table[part] = {}
        table = table[part]
        if into_arrays and isinstance(table, list):
            table = table[-1]
        if not isinstance(table, dict):
            raise KeyError(part)
    return table


class _Parser:
    def __init__(self, text: str) -> None:
        if not isinstance(text, str):
            raise TypeError(f"Expected str object, not '{type(text).__qualname__}'")
        self.src = text.replace("\r\n", "\n")

    # --- errors and small scanners ---

    def error(self, pos: int, message: str) -> TOMLDecodeError:
        src = self.src
        if pos >= len(src):
            where = "end of document"
        else:
            line = src.count("\n", 0, pos) + 1
            column = pos + 1 if line == 1 else pos - src.rindex("\n", 0, pos)
            where = f"line {line}, column {column}"
        return TOMLDecodeError(f"{message} (at {where})")

    def skip(self, pos: int, chars: frozenset) -> int:
        src = self.src
        try:
            while src[pos] in chars:
                pos += 1
        except IndexError:
            pass
        return pos

    def skip_to(self, pos: int, end_mark: str, bad: frozenset, must_end: bool) -> int:
        """The position of the next `end_mark` (or the end of the text), refusing a `bad`
        character before it."""
        src = self.src
        found = src.find(end_mark, pos)
        if found < 0:
            found = len(src)
            if must_end:
                raise self.error(found, f"Expected {end_mark!r}")
        if not bad.isdisjoint(src[pos:found]):
            while src[pos] not in bad:
                pos += 1
            raise self.error(pos, f"Found invalid character {src[pos]!r}")
        return found

    def skip_comment(self, pos: int) -> int:
        if self.src.startswith("#", pos):
            return self.skip_to(pos + 1, "\n", _BAD_IN_LINE, must_end=False)
        return pos

    def skip_array_space(self, pos: int) -> int:
        while True:
            before = pos
            pos = self.skip_comment(self.skip(pos, _WS_NL))
            if pos == before:
                return pos

    # --- the document ---

    def document(self) -> dict:
        src = self.src
        root: dict = {}
        marks = _Marks()
        header: tuple = ()
        pos = 0
        while True:
            pos = self.skip(pos, _WS)
            if pos >= len(src):
                break
            char = src[pos]
            if char == "\n":
                pos += 1
                continue
            if char in _KEY_START:
                pos = self.assignment(pos, root, marks, header)
                pos = self.skip(pos, _WS)
            elif char == "[":
                marks.apply_pending()
                if src.startswith("[[", pos):
                    pos, header = self.array_header(pos, root, marks)
                else:
                    pos, header = self.table_header(pos, root, marks)
                pos = self.skip(pos, _WS)
            elif char != "#":
                raise self.error(pos, "Invalid statement")
            pos = self.skip_comment(pos)
            if pos >= len(src):
                break
            if src[pos] != "\n":
                raise self.error(pos, "Expected newline or end of document after a statement")
            pos += 1
        return root

    def table_header(self, pos: int, root: dict, marks: _Marks) -> tuple[int, tuple]:
        pos, key = self.key(self.skip(pos + 1, _WS))
        if marks.has(key, _DECLARED) or marks.has(key, _SEALED):
            raise self.error(pos, f"Cannot declare {key} twice")
        marks.mark(key, _DECLARED)
        try:
            _nest(root, key)
        except KeyError:
            raise self.error(pos, "Cannot overwrite a value") from None
        if not self.src.startswith("]", pos):
            raise self.error(pos, "Expected ']' at the end of a table declaration")
        return pos + 1, key

    def array_header(self, pos: int, root: dict, marks: _Marks) -> tuple[int, tuple]:
        pos, key = self.key(self.skip(pos + 2, _WS))
        if marks.has(key, _SEALED):
            raise self.error(pos, f"Cannot mutate immutable namespace {key}")
        # A new element: what was declared under the previous one does not bind this one,
        # but the array's own name still cannot become a [table].
        marks.forget(key)
        marks.mark(key, _DECLARED)
        try:
            parent = _nest(root, key[:-1])
            if key[-1] not in parent:
                parent[key[-1]] = [{}]
            elif isinstance(parent[key[-1]], list):
                parent[key[-1]].append({})
            else:
                raise KeyError(key[-1])
        except KeyError:
            raise self.error(pos, "Cannot overwrite a value") from None
        if not self.src.startswith("]]", pos):
            raise self.error(pos, "Expected ']]' at the end of an array declaration")
        return pos + 2, key

    def assignment(self, pos: int, root: dict, marks: _Marks, header: tuple) -> int:
        pos, key, value = self.key_value(pos)
        for i in range(1, len(key)):
            # The tables a dotted key makes: not tables declared before, and closed to
            # headers and to dotted keys of later sections.
            made = header + key[:i]
            if marks.has(made, _DECLARED):
                raise self.error(pos, f"Cannot redefine namespace {made}")
            marks.pending.append(made)
        parent_key = header + key[:-1]
        if marks.has(parent_key, _SEALED):
            raise self.error(pos, f"Cannot mutate immutable namespace {parent_key}")
        try:
            table = _nest(root, parent_key)
        except KeyError:
            raise self.error(pos, "Cannot overwrite a value") from None
        if key[-1] in table:
            raise self.error(pos, "Cannot overwrite a value")
        if isinstance(value, (dict, list)):
            marks.mark(header + key, _SEALED, subtree=True)
        table[key[-1]] = value
        return pos

    # --- keys ---

    def key_value(self, pos: int) -> tuple[int, tuple, object]:
        pos, key = self.key(pos)
        if not self.src.startswith("=", pos):
            raise self.error(pos, "Expected '=' after a key in a key/value pair")
        pos, value = self.value(self.skip(pos + 1, _WS))
        return pos, key, value

    def key(self, pos: int) -> tuple[int, tuple]:
        pos, part = self.key_part(pos)
        key = (part,)
        pos = self.skip(pos, _WS)
        while self.src.startswith(".", pos):
            pos, part = self.key_part(self.skip(pos + 1, _WS))
            key += (part,)
            pos = self.skip(pos, _WS)
        return pos, key

    def key_part(self, pos: int) -> tuple[int, str]:
        char = self.src[pos:pos + 1]
        if char and char in BARE_KEY_CHARS:
            end = self.skip(pos, BARE_KEY_CHARS)
            return end, self.src[pos:end]
        if char == "'":
            return self.literal_string(pos)
        if char == '"':
            return self.basic_string(pos + 1, multiline=False)
        raise self.error(pos, "Invalid initial character for a key part")

    # --- values ---

    def value(self, pos: int) -> tuple[int, object]:
        src = self.src
        char = src[pos:pos + 1]
        if char == '"':
            if src.startswith('"""', pos):
                return self.multiline_string(pos, '"')
            return self.basic_string(pos + 1, multiline=False)
        if char == "'":
            if src.startswith("'''", pos):
                return self.multiline_string(pos, "'")
            return self.literal_string(pos)
        if char == "t" and src.startswith("true", pos):
            return pos + 4, True
        if char == "f" and src.startswith("false", pos):
            return pos + 5, False
        if char == "[":
            return self.array(pos)
        if char == "{":
            return self.inline_table(pos)
        if char and char in _DEC:
            found = self.date_time(pos) or self.local_time(pos)
            if found:
                return found
        number = self.number(pos)
        if number:
            return number
        if src[pos:pos + 3] in ("inf", "nan"):
            return pos + 3, float(src[pos:pos + 3])
        if src[pos:pos + 4] in ("-inf", "+inf", "-nan", "+nan"):
            return pos + 4, float(src[pos:pos + 4])
        raise self.error(pos, "Invalid value")

    def array(self, pos: int) -> tuple[int, list]:
        items: list = []
        pos = self.skip_array_space(pos + 1)
        if self.src.startswith("]", pos):
            return pos + 1, items
        while True:
            pos, item = self.value(pos)
            items.append(item)
            pos = self.skip_array_space(pos)
            char = self.src[pos:pos + 1]
            if char == "]":
                return pos + 1, items
            if char != ",":
                raise self.error(pos, "Unclosed array")
            pos = self.skip_array_space(pos + 1)
            if self.src.startswith("]", pos):
                return pos + 1, items

    def inline_table(self, pos: int) -> tuple[int, dict]:
        table: dict = {}
        marks = _Marks()
        pos = self.skip(pos + 1, _WS)
        if self.src.startswith("}", pos):
            return pos + 1, table
        while True:
            pos, key, value = self.key_value(pos)
            if marks.has(key, _SEALED):
                raise self.error(pos, f"Cannot mutate immutable namespace {key}")
            try:
                parent = _nest(table, key[:-1], into_arrays=False)
            except KeyError:
                raise self.error(pos, "Cannot overwrite a value") from None
            if key[-1] in parent:
                raise self.error(pos, f"Duplicate inline table key {key[-1]!r}")
            parent[key[-1]] = value
            pos = self.skip(pos, _WS)
            char = self.src[pos:pos + 1]
            if char == "}":
                return pos + 1, table
            if char != ",":
                raise self.error(pos, "Unclosed inline table")
            if isinstance(value, (dict, list)):
                marks.mark(key, _SEALED, subtree=True)
            pos = self.skip(pos + 1, _WS)

    # --- strings ---

    def literal_string(self, pos: int) -> tuple[int, str]:
        end = self.skip_to(pos + 1, "'", _BAD_IN_LINE, must_end=True)
        return end + 1, self.src[pos + 1:end]

    def multiline_string(self, pos: int, quote: str) -> tuple[int, str]:
        src = self.src
        pos += 3
        if src.startswith("\n", pos):
            pos += 1
        if quote == "'":
            end = self.skip_to(pos, "'''", _BAD_IN_MULTILINE, must_end=True)
            pos, text = end + 3, src[pos:end]
        else:
            pos, text = self.basic_string(pos, multiline=True)
        # Up to two quotes just before the closing three belong to the string.
        for _ in range(2):
            if not src.startswith(quote, pos):
                break
            pos += 1
            text += quote
        return pos, text

    def basic_string(self, pos: int, multiline: bool) -> tuple[int, str]:
        """From just after the opening quote(s) to just after the closing one(s)."""
        src, end = self.src, len(self.src)
        bad = _BAD_IN_MULTILINE if multiline else _BAD_IN_LINE
        parts = []
        while True:
            # Whole runs up to the next quote or backslash, not a character at a time.
            quote, backslash = src.find('"', pos), src.find("\\", pos)
            stop = min(i for i in (quote, backslash, end) if i >= 0)
            run = src[pos:stop]
            if not bad.isdisjoint(run):
                while src[pos] not in bad:
                    pos += 1
                raise self.error(pos, f"Illegal character {src[pos]!r}")
            if stop == end:
                raise self.error(end, "Unterminated string")
            parts.append(run)
            if stop == backslash:
                pos, unescaped = self.escape(stop, multiline)
                parts.append(unescaped)
            elif not multiline:
                return stop + 1, "".join(parts)
            elif src.startswith('"""', stop):
                return stop + 3, "".join(parts)
            else:
                parts.append('"')
                pos = stop + 1

    def escape(self, pos: int, multiline: bool) -> tuple[int, str]:
        src = self.src
        escape = src[pos:pos + 2]
        pos += 2
        if multiline and escape in ("\\ ", "\\\t", "\\\n"):
            # A line-ending backslash: the newline and the white space after it go.
            if escape != "\\\n":
                pos = self.skip(pos, _WS)
                if pos >= len(src):
                    return pos, ""
                if src[pos] != "\n":
                    raise self.error(pos, "Unescaped '\\' in a string")
                pos += 1
            return self.skip(pos, _WS_NL), ""
        if escape in ("\\u", "\\U"):
            width = 4 if escape == "\\u" else 8
            digits = src[pos:pos + width]
            if len(digits) != width or not _HEX.issuperset(digits):
                raise self.error(pos, "Invalid hex value")
            pos += width
            code = int(digits, 16)
            if not (0 <= code <= 0xD7FF or 0xE000 <= code <= 0x10FFFF):
                raise self.error(pos, "Escaped character is not a Unicode scalar value")
            return pos, chr(code)
        try:
            return pos, _ESCAPES[escape]
        except KeyError:
            raise self.error(pos, "Unescaped '\\' in a string") from None

    # --- numbers, dates and times ---

    def digits(self, pos: int, allowed: frozenset) -> int:
        """The end of a run of `allowed` digits from `pos` with single underscores between
        digits; `pos` itself when no digit is there."""
        src, end = self.src, len(self.src)
        if pos >= end or src[pos] not in allowed:
            return pos
        pos += 1
        while pos < end:
            if src[pos] in allowed:
                pos += 1
            elif src[pos] == "_" and pos + 1 < end and src[pos + 1] in allowed:
                pos += 2
            else:
                break
        return pos

    def number(self, pos: int) -> tuple[int, int | float] | None:
        src = self.src
        if src.startswith("0", pos):
            allowed = _RADIX_DIGITS.get(src[pos + 1:pos + 2])
            if allowed:
                end = self.digits(pos + 2, allowed)
                if end > pos + 2:
                    return end, self.integer(pos, end, 0)
        start = pos
        if src[pos:pos + 1] in ("+", "-"):
            pos += 1
        if src.startswith("0", pos):
            pos += 1
        else:
            end = self.digits(pos, _DEC)
            if end == pos:
                return None
            pos = end
        whole = pos
        if src.startswith(".", pos):
            end = self.digits(pos + 1, _DEC)
            if end > pos + 1:
                pos = end
        if src[pos:pos + 1] in ("e", "E"):
            sign = pos + 2 if src[pos + 1:pos + 2] in ("+", "-") else pos + 1
            end = self.digits(sign, _DEC)
            if end > sign:
                pos = end
        if pos > whole:
            return pos, float(src[start:pos])
        return pos, self.integer(start, pos, 0)

    def integer(self, start: int, end: int, base: int) -> int:
        try:
            return int(self.src[start:end], base)
        except ValueError:  # longer than sys.get_int_max_str_digits()
            raise self.error(start, "Integer too long") from None

    def fixed(self, pos: int, width: int) -> int | None:
        """The `width` decimal digits at `pos` as a number, or None."""
        field = self.src[pos:pos + width]
        if len(field) == width and _DEC.issuperset(field):
            return int(field)
        return None

    def clock(self, pos: int) -> tuple[int, tuple] | None:
        """HH:MM:SS[.fraction] at `pos`: its end and (hour, minute, second, microsecond)."""
        src = self.src
        hour, minute, second = self.fixed(pos, 2), self.fixed(pos + 3, 2), self.fixed(pos + 6, 2)
        if (hour is None or minute is None or second is None or src[pos + 2:pos + 3] != ":"
                or src[pos + 5:pos + 6] != ":" or hour > 23 or minute > 59 or second > 59):
            return None
        pos += 8
        micro = 0
        if src.startswith(".", pos):
            end = self.skip(pos + 1, _DEC)
            if end > pos + 1:
                # Microseconds: the first six digits count, the rest are read and dropped.
                micro = int(src[pos + 1:min(end, pos + 7)].ljust(6, "0"))
                pos = end
        return pos, (hour, minute, second, micro)

    def date_time(self, pos: int) -> tuple[int, object] | None:
        src = self.src
        year, month, day = self.fixed(pos, 4), self.fixed(pos + 5, 2), self.fixed(pos + 8, 2)
        if (year is None or month is None or day is None or src[pos + 4:pos + 5] != "-"
                or src[pos + 7:pos + 8] != "-" or not 1 <= month <= 12 or not 1 <= day <= 31):
            return None
        import datetime

        start, pos = pos, pos + 10
        clock = self.clock(pos + 1) if src[pos:pos + 1] in ("T", "t", " ") else None
        try:
            if clock is None:
                return pos, datetime.date(year, month, day)
            pos, (hour, minute, second, micro) = clock
            zone = None
            if src[pos:pos + 1] in ("Z", "z"):
                zone, pos = datetime.timezone.utc, pos + 1
            elif src[pos:pos + 1] in ("+", "-"):
                off_hour, off_minute = self.fixed(pos + 1, 2), self.fixed(pos + 4, 2)
                if (off_hour is not None and off_minute is not None and src[pos + 3:pos + 4] == ":"
                        and off_hour <= 23 and off_minute <= 59):
                    sign = 1 if src[pos] == "+" else -1
                    zone = datetime.timezone(datetime.timedelta(hours=sign * off_hour,
                                                                minutes=sign * off_minute))
                    pos += 6
            return pos, datetime.datetime(year, month, day, hour, minute, second, micro, tzinfo=zone)
        except ValueError:
            raise self.error(start, "Invalid date or datetime") from None

    def local_time(self, pos: int) -> tuple[int, object] | None:
        clock = self.clock(pos)
        if clock is None:
            return None
        import datetime

        return clock[0], datetime.time(*clock[1])
