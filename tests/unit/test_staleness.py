"""The stale windows of RFC 5861 as the decorator applies them (pure rules)."""

from __future__ import annotations

import pytest

from aiocache_ext.exceptions import SerializerError
from aiocache_ext.http.cache_control import parse_cache_control
from aiocache_ext.http.staleness import NEVER_STALE, Freshness, StaleRules, freshness
from aiocache_ext.streaming.format import StaleValue, parse_record
from aiocache_ext.streaming.integrity import Integrity

OPTIONS = StaleRules(while_revalidate=10, if_error=60)


@pytest.mark.parametrize(
    ("late", "expected"),
    [
        (-0.001, Freshness.FRESH),
        (0, Freshness.REVALIDATE),  # expires_at is the first stale instant
        (9.999, Freshness.REVALIDATE),
        (10, Freshness.IF_ERROR),
        (59.9, Freshness.IF_ERROR),
        (60, Freshness.EXPIRED),
    ],
)
def test_freshness_counts_every_window_from_the_end_of_freshness(
    late: float, expected: Freshness
) -> None:
    assert freshness(1000.0, OPTIONS, 1000.0 + late) is expected


def test_an_entry_without_expiry_is_always_fresh_and_without_windows_simply_expires() -> None:
    assert freshness(None, NEVER_STALE, 1e12) is Freshness.FRESH
    assert freshness(5.0, NEVER_STALE, 5.0) is Freshness.EXPIRED
    # A window for errors only: no stale serving while revalidating.
    assert freshness(5.0, StaleRules(if_error=3), 6.0) is Freshness.IF_ERROR


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, OPTIONS),  # the options when the endpoint says nothing
        ("max-age=5", OPTIONS),
        ("stale-while-revalidate=3", StaleRules(3, 60)),  # the endpoint's own win
        ("stale-if-error=0", StaleRules(10, 0)),
        ("stale-while-revalidate=300, stale-if-error=900", StaleRules(300, 900)),
        ("must-revalidate, stale-if-error=900", NEVER_STALE),  # RFC 9111 5.2.2.2
        ("proxy-revalidate", NEVER_STALE),
        ("no-cache", NEVER_STALE),
    ],
)
def test_the_endpoints_cache_control_decides_its_windows(
    header: str | None, expected: StaleRules
) -> None:
    assert OPTIONS.for_response(parse_cache_control(header)) == expected


def test_negative_windows_are_refused() -> None:
    with pytest.raises(ValueError, match="stale_while_revalidate"):
        StaleRules(while_revalidate=-1)


@pytest.mark.parametrize("payload", ['{"a": [1, 2]}', b"\x80\x04K\x01.", ""])
def test_a_stale_value_record_round_trips_text_and_bytes(payload: str | bytes) -> None:
    record = StaleValue(payload, 100.0, 160.0, 10.0, 3600.0)
    sealed = Integrity(b"secret")
    assert parse_record(record.dumps("ns:k", sealed), "ns:k", sealed) == record
    with pytest.raises(SerializerError):  # bound to its key, like every sealed record
        parse_record(record.dumps("ns:k", sealed), "ns:other", sealed)


def test_a_malformed_stale_value_is_refused() -> None:
    text = StaleValue("1", 1.0, 2.0, -5.0).dumps("k")
    with pytest.raises(SerializerError, match="negative"):
        parse_record(text, "k")
    with pytest.raises(SerializerError, match="corrupt stored value"):
        parse_record('aiocache_ext.stream/4 {"value": {"payload": 1}}', "k")
