"""Compact JSON through CPython's C accelerator (`_json`), without importing `json`.

`import json` pulls in `re` (json.decoder and json.scanner compile patterns at import): ~6 ms of
every command's start-up, for the few hundred bytes a command exchanges with the supervisor or
reads from a state file. The accelerator itself is a builtin module that needs none of that.
Output is what ``json.dumps(obj, separators=(",", ":"))`` writes; anything else (indent,
sort_keys) is json's job, imported where it is used. Without `_json` (another interpreter),
this falls back to `json`.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

try:
    import _json
except ImportError:  # pragma: no cover - CPython always has it
    _json = None  # type: ignore[assignment]


def _not_serializable(obj: object) -> object:
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def _constant(name: str) -> float:
    # What json accepts besides the standard: NaN, Infinity, -Infinity.
    return {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}[name]


class _ScannerContext:
    """The attributes _json.make_scanner reads from a json.JSONDecoder."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = staticmethod(_constant)
    memo: dict = {}


if _json is not None:
    _scan = _json.make_scanner(_ScannerContext())
    _encode = _json.make_encoder(None, _not_serializable, _json.encode_basestring_ascii, None, ":", ",",
                                 False, False, True)

    def dumps(obj: Any) -> str:
        """``json.dumps(obj, separators=(",", ":"))``."""
        return "".join(_encode(obj, 0))

    def loads(text: str | bytes) -> Any:
        """``json.loads(text)``; ValueError (as json.JSONDecodeError is) for malformed input."""
        if isinstance(text, (bytes, bytearray)):
            text = text.decode()
        start = len(text) - len(text.lstrip(" \t\n\r"))
        try:
            value, end = _scan(text, start)
        except StopIteration as stop:
            raise ValueError(f"malformed JSON at character {stop.value}") from None
        except SystemError:
            # An error inside an array or object is raised as json.decoder.JSONDecodeError,
            # which _json takes from sys.modules without importing it: with json not loaded it
            # fails with a SystemError instead. Only then, json itself says what is wrong.
            import json
            try:
                return json.loads(text)
            except RecursionError:
                raise ValueError("JSON nested too deeply") from None
        except RecursionError:
            # The scanner recurses per level: "[[[[..." from a mangled file is no document of ours.
            raise ValueError("JSON nested too deeply") from None
        if text[end:].strip(" \t\n\r"):
            raise ValueError(f"extra data after JSON at character {end}")
        return value
else:  # pragma: no cover
    import json as _fallback

    def dumps(obj: Any) -> str:
        return _fallback.dumps(obj, separators=(",", ":"))

    def loads(text: str | bytes) -> Any:
        return _fallback.loads(text)
