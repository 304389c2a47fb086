"""ttl forms users write, checked once (SPEC §10)."""

from __future__ import annotations

import datetime
import time

import pytest

from aiocache_ext import ONE_DAY, ONE_HOUR, ONE_MINUTE, ONE_MONTH, ONE_WEEK, ONE_YEAR
from aiocache_ext.ttl import memcached_expiry, parse_ttl


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (None, None), (1, 1), (0.25, 0.25), (90.0, 90), ("90", 90), (" 1.5 ", 1.5),
        ("90s", 90), ("5m", 300), ("1h30m", 5400), ("2d", 172_800), ("1w", 604_800),
        ("1H 30M", 5400), ("250ms", 0.25), (datetime.timedelta(minutes=5), 300),
        (datetime.timedelta(milliseconds=1500), 1.5), (ONE_MINUTE, 60), (ONE_HOUR, 3600),
        (ONE_DAY, 86_400), (ONE_WEEK, 604_800), (ONE_MONTH, 2_592_000), (ONE_YEAR, 31_536_000),
    ],
)  # fmt: skip
def test_accepted_forms(value: object, seconds: float | None) -> None:
    parsed = parse_ttl(value)
    assert parsed == seconds
    if seconds is not None and seconds == int(seconds):
        assert isinstance(parsed, int)  # whole seconds stay int: every backend takes them


@pytest.mark.parametrize(
    "value",
    [0, -1, "0s", "", "abc", "5 minutes", "5mm", "1h30", "m5", True, [5], float("nan"),
     float("inf"), datetime.timedelta(0), b"5m"],
)  # fmt: skip
def test_refused_forms_name_the_accepted_ones(value: object) -> None:
    with pytest.raises((TypeError, ValueError), match="ttl"):
        parse_ttl(value)


def test_memcached_expiry_rounds_up_and_switches_to_a_timestamp_past_30_days() -> None:
    assert memcached_expiry(None) == 0
    assert memcached_expiry(0.2) == 1
    assert memcached_expiry(ONE_MONTH) == ONE_MONTH
    assert abs(memcached_expiry(ONE_YEAR) - (time.time() + ONE_YEAR)) < 5
