"""Container names: what is refused, with which message, and that valid names stay valid."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from lxctools.errors import ExitCode, InvalidNameError
from lxctools.names import MAX_NAME_LENGTH, is_valid_name, validate_name


@pytest.mark.parametrize("bad,why", [
    ("", "empty"), ("../x", "'/'"), ("a/b", "'/'"), (".", "valid"), ("..", "valid"), ("-x", "starts with '-'"),
    (".hidden", "starts with '.'"), ("a b", "' '"), ("x" * (MAX_NAME_LENGTH + 1), "longer"), ("é", "'é'"),
])
def test_refused(bad, why):
    with pytest.raises(InvalidNameError) as err:
        validate_name(bad)
    assert why in err.value.message
    assert err.value.exit_code == ExitCode.INVALID_NAME


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.", min_size=1,
               max_size=MAX_NAME_LENGTH))
def test_safe_alphabet(name):
    if name[0] in "-." or name in (".", ".."):
        assert not is_valid_name(name)
    else:
        assert validate_name(name) == name


@given(st.text(max_size=100))
def test_never_anything_but_invalid_name(name):
    try:
        validate_name(name)
    except InvalidNameError:
        return
    assert "/" not in name and name not in (".", "..") and name and len(name.encode()) <= MAX_NAME_LENGTH


@given(st.integers(min_value=0, max_value=40),
       st.lists(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=94, unique=True)
       .map("".join))
def test_random_text_draws_from_the_alphabet_only(length, alphabet):
    from lxctools.names import random_text
    text = random_text(length, alphabet)
    assert len(text) == length and set(text) <= set(alphabet)


def test_random_text_favours_no_character(monkeypatch):
    # Every byte value in turn: 36 letters take 252 of each 256, so each comes out 14 times in
    # 504. Without drawing 252-255 again, the first four letters would come out more often.
    import os
    from collections import Counter

    from lxctools.names import random_text
    monkeypatch.setattr(os, "urandom", lambda n: bytes(i % 256 for i in range(n)))
    counts = Counter(random_text(504, "abcdefghijklmnopqrstuvwxyz0123456789"))
    assert set(counts.values()) == {14} and len(counts) == 36
