"""Settings pyl takes from the environment."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("raw, expected", [("", 30.0), ("  ", 30.0), ("0", 0.0), ("2.5", 2.5), ("1e3", 1000.0),
                                           ("abc", None), ("-1", None), ("nan", None), ("inf", None), ("1e400", None)])
def test_durations_from_the_environment(monkeypatch, raw, expected):
    from lxctools.errors import UsageError
    from lxctools.paths import seconds_from_env
    monkeypatch.setenv("PYL_MONITOR_LINGER", raw)
    if expected is None:
        with pytest.raises(UsageError, match=r"^PYL_MONITOR_LINGER='.*' is not a number of seconds$"):
            seconds_from_env("PYL_MONITOR_LINGER", 30.0)
    else:
        assert seconds_from_env("PYL_MONITOR_LINGER", 30.0) == expected
