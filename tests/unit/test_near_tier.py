"""The near tier's rules: bounded by bytes, least recently used out first, expiry, and
tickets that keep a read racing an invalidation from storing what it dropped."""

from __future__ import annotations

import pytest

from aiocache_ext.backends.near_tier import ABSENT, OVERHEAD, LocalTier


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def kept(tier: LocalTier, key: str, value: object, ttl: float = 10.0) -> bool:
    return tier.fill(key, tier.begin(key), value, ttl)


def test_a_value_is_kept_until_its_ttl() -> None:
    clock = Clock()
    tier = LocalTier(10_000, clock)
    assert kept(tier, "k", b"v", ttl=2.0)
    assert tier.get("k") == b"v"
    clock.now = 1.999
    assert tier.get("k") == b"v"
    clock.now = 2.0
    assert tier.get("k") is None
    assert tier.nbytes == 0


def test_a_ttl_counts_from_when_the_read_was_sent_not_from_its_reply() -> None:
    """The remaining ttl Redis reports was measured after the read was sent: counted
    from the reply, the value would outlive the key by the reply's latency."""
    clock = Clock()
    tier = LocalTier(10_000, clock)
    ticket = tier.begin("k")
    clock.now = 0.3  # the reply arrives
    assert tier.fill("k", ticket, b"v", 0.5)
    clock.now = 0.499
    assert tier.get("k") == b"v"
    clock.now = 0.5
    assert tier.get("k") is None


def test_an_absent_key_is_kept_as_absent() -> None:
    tier = LocalTier(10_000)
    assert kept(tier, "k", ABSENT)
    assert tier.get("k") is ABSENT


def test_a_read_that_an_invalidation_overtook_is_not_kept() -> None:
    tier = LocalTier(10_000)
    ticket = tier.begin("k")
    tier.invalidate(["k"])  # announced while the read was under way
    assert not tier.fill("k", ticket, b"old", 10.0)
    assert tier.get("k") is None
    ticket = tier.begin("k")
    tier.flush()  # the link was lost meanwhile
    assert not tier.fill("k", ticket, b"old", 10.0)


def test_of_two_reads_under_way_the_later_one_is_kept() -> None:
    tier = LocalTier(10_000)
    first, second = tier.begin("k"), tier.begin("k")
    assert not tier.fill("k", first, b"1", 10.0)
    assert tier.fill("k", second, b"2", 10.0)
    assert tier.get("k") == b"2"


def test_the_tier_stays_within_max_bytes_least_recently_used_out_first() -> None:
    size = OVERHEAD + 2 + 1000  # a two-letter key and 1,000 bytes
    tier = LocalTier(size * 3)
    for key in ("k1", "k2", "k3"):
        assert kept(tier, key, b"x" * 1000)
    assert tier.get("k1") is not None  # k1 used: k2 is now the oldest
    assert kept(tier, "k4", b"x" * 1000)
    assert (tier.get("k2"), len(tier), tier.nbytes) == (None, 3, size * 3)
    assert not kept(tier, "big", b"x" * size * 3)  # larger than the whole tier
    assert tier.nbytes <= tier.max_bytes


def test_a_refill_replaces_the_value_and_its_size() -> None:
    tier = LocalTier(10_000)
    assert kept(tier, "k", b"x" * 100)
    assert kept(tier, "k", b"y")
    assert (tier.get("k"), tier.nbytes) == (b"y", OVERHEAD + 1 + 1)


def test_nothing_is_kept_for_no_time_and_max_bytes_must_be_positive() -> None:
    tier = LocalTier(10_000)
    assert not kept(tier, "k", b"v", ttl=0)
    with pytest.raises(ValueError, match="max_bytes"):
        LocalTier(0)
