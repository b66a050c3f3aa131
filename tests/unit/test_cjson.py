"""lxctools.cjson: json's own answers through _json, without importing json on the way."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lxctools import cjson

CHECKOUT = Path(__file__).resolve().parents[2]

_DOCUMENTS = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=10)


@given(document=_DOCUMENTS)
def test_round_trip_is_jsons(document) -> None:
    text = cjson.dumps(document)
    assert text == json.dumps(document, separators=(",", ":"))
    assert cjson.loads(text) == json.loads(text)


@given(document=_DOCUMENTS, cut=st.integers(0, 40), junk=st.sampled_from(["", "}", "]", ",", "x", "\"", "{", "["]))
def test_any_text_parses_as_json_does_or_is_a_value_error(document, cut, junk) -> None:
    text = json.dumps(document)
    text = text[:cut] + junk + text[cut:]
    try:
        expected = json.loads(text)
    except ValueError:
        with pytest.raises(ValueError):
            cjson.loads(text)
    else:
        assert cjson.loads(text) == expected


def test_malformed_documents_are_value_errors_in_a_process_without_json() -> None:
    # _json raises errors inside arrays and objects as json.decoder.JSONDecodeError, looked up
    # in sys.modules: without json imported (a pyl command's start-up) that was a SystemError.
    code = """
import sys
from lxctools import cjson
assert "json" not in sys.modules
for text in ["{", "[1,", '{"a": ', '{"a" 1}', '[1 2]', '{"a": [}', '["\\\\x"]', '{1: 2}']:
    try:
        cjson.loads(text)
    except ValueError:
        continue
    raise SystemExit(f"accepted {text!r}")
print("ok")
"""
    r = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, cwd=CHECKOUT)
    assert r.returncode == 0 and r.stdout == "ok\n", r.stderr
