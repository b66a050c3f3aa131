"""The config validators that avoid `re` and `signal` (lxctools.config.validators) against the
regular expressions and the `signal.Signals` lookup they replace.

The oracles use [0-9] where the old patterns had \\d: the hand-written checks take ASCII digits
only, on purpose (LXC's parsers use isdigit(); Python's \\d and int() also take other scripts'
digits, so "c ١:٣ rwm" used to pass as "c 1:3 rwm"). Whitespace stays Unicode, as before.
"""

from __future__ import annotations

import re
import signal

import pytest
from hypothesis import given, settings, strategies as st

from lxctools.config import validators as v

# Characters the patterns care about, a few that look like them, and anything at all.
_NEAR = "0123456789١٣abcABCdefxXkKmMgGbBrwmhsun:*- \t\n\u2003\x1c"
values = st.one_of(st.text(alphabet=_NEAR, max_size=24), st.text(max_size=12))


def _accepts(check, value: str) -> bool:
    try:
        check(value)
    except ValueError:
        return False
    return True


def _device_numbers_exist(match: re.Match) -> bool:
    major, minor = match.group(2), match.group(3)
    return ((major in (None, "*") or int(major) <= 4095) and (minor in (None, "*") or int(minor) <= 1048575))


ORACLES = [
    (v.hwaddr, r"([0-9a-fA-FxX]{2}:){5}[0-9a-fA-FxX]{2}"),
    ((v.device_rule, _device_numbers_exist), r"a|[abc](\s+(\*|[0-9]+):(\*|[0-9]+)(\s+[rwm]{1,3})?)?"),
    (v.time_offset, r"-?[0-9]+(h|m|s|ms|us|ns)"),
    (v.byte_size(False), r"[0-9]+\s*([bB]|[kKmMgG][bB]?)?"),
]


@pytest.mark.parametrize("check,pattern", ORACLES, ids=["hwaddr", "device_rule", "time_offset", "byte_size"])
@settings(max_examples=1500, deadline=None)
@given(value=values)
def test_hand_written_checks_accept_what_their_pattern_matches(check, pattern, value):
    check, also = check if isinstance(check, tuple) else (check, lambda match: True)
    match = re.fullmatch(pattern, value)
    assert _accepts(check, value) == (match is not None and also(match)), repr(value)


@pytest.mark.parametrize("check,good,bad", [
    (v.hwaddr, ["00:16:3e:xx:xx:xx", "AA:bb:CC:dd:EE:ff"], ["00:16:3e:xx:xx", "00:16:3e:xx:xx:xx:", "0:16:3e:xx:xx:xxx"]),
    (v.device_rule, ["a", "c", "c 1:3 rwm", "b *:* m", "c\t136:*\trw", "a 1:2"],
     ["", "c 1:3 rwm ", " c 1:3", "c1:3", "c 1:3 rwmr", "c 1 rwm", "c ١:٣ rwm", "d 1:3 r",
      "c 99999999999:0 rwm", "b 4096:0 r", "c 1:1048576 rwm", "c *:4294967296 m"]),
    (v.time_offset, ["5s", "-10ms", "3h", "0ns", "7us", "2m"], ["s", "-s", "5", "5 s", "5S", "+5s", "٥s"]),
    (v.byte_size(False), ["1024", "64KB", "1 MB", "2g", "7b", "3kB"], ["KB", "1 K B", "1TB", "-1", "1.5MB", "١MB"]),
])
def test_examples(check, good, bad):
    assert [g for g in good if not _accepts(check, g)] == []
    assert [b for b in bad if _accepts(check, b)] == []


def test_byte_size_auto():
    assert _accepts(v.byte_size(True), "auto")
    assert not _accepts(v.byte_size(False), "auto")


# ---- signals --------------------------------------------------------------------------------
def _old_parse_signal(value: str) -> int:
    """parse_signal as it was, on the `signal` module (the oracle)."""
    upper = value.upper()
    if not upper.startswith("SIG"):
        if not v.is_uint(value):
            raise ValueError
        n = int(value)
        if not 0 <= n <= signal.SIGRTMAX:
            raise ValueError
        return n
    for base, sign in (("SIGRTMIN", 1), ("SIGRTMAX", -1)):
        if upper == base:
            return int(getattr(signal, base))
        if upper.startswith(base) and upper[len(base)] in "+-":
            off = upper[len(base) + 1:]
            if not v.is_uint(off) or (upper[len(base)] == "+") != (sign == 1):
                raise ValueError
            n = int(getattr(signal, base)) + sign * int(off)
            if not signal.SIGRTMIN <= n <= signal.SIGRTMAX:
                raise ValueError
            return n
    try:
        return int(signal.Signals[upper])
    except KeyError:
        raise ValueError from None


def _parse_or_none(parse, value: str) -> int | None:
    try:
        return parse(value)
    except ValueError:
        return None


def test_every_signal_name_and_alias_is_known():
    names = list(signal.Signals.__members__)
    assert "SIGIOT" in names and "SIGCLD" in names  # aliases of SIGABRT and SIGCHLD
    for name in names:
        assert v.parse_signal(name) == int(signal.Signals[name])
        assert v.parse_signal(name.lower()) == int(signal.Signals[name])


@pytest.mark.parametrize("value", ["SIG_DFL", "SIG_IGN", "SIG_BLOCK", "SIG_SETMASK", "SIGNAL", "NSIG",
                                   "SIG", "SIGRTMIN+99", "SIGRTMAX+1", "SIGRTMIN-1", "999", "-1", "SIGKILL "])
def test_not_signals(value):
    with pytest.raises(ValueError):
        v.parse_signal(value)


@settings(max_examples=1500, deadline=None)
@given(value=st.one_of(
    st.sampled_from(list(signal.Signals.__members__) + ["SIG_DFL", "SIGRTMIN", "SIGRTMAX"]).flatmap(
        lambda name: st.sampled_from([name, name.lower(), name + "+1", name + "-3", name[:-1], name + "X"])),
    st.from_regex(r"(sig|SIG)(RTMIN|RTMAX|rtmin)[+-][0-9]{1,3}", fullmatch=True),
    st.text(alphabet="SIGRTMAXNHUPKLsig_+-0123456789١", max_size=12),
))
def test_parse_signal_agrees_with_the_signal_module(value):
    assert _parse_or_none(v.parse_signal, value) == _parse_or_none(_old_parse_signal, value)
