"""The headers of a hit as pure functions: ``hit_headers_until`` says how long the
headers worked out at one moment stay exactly those a hit would get, so a prepared hit
is never answered with an ``Age``, a ``Cache-Status`` ttl or a ``max-age`` gone stale."""

from __future__ import annotations

import pytest

from aiocache_ext.streaming.format import Manifest
from aiocache_ext.streaming.replay import ReplayOptions, hit_headers, hit_headers_until, hit_marks

OPTIONS = ReplayOptions(b"x-cache", client_max_age=True, read_batch=4, cache_status="api")


def headers(entry: Manifest, now: float) -> list[tuple[bytes, bytes]]:
    return hit_headers(entry, now, OPTIONS, hit_marks(entry, now, OPTIONS))


def entry(stored_at: float, ttl: float | None) -> Manifest:
    return Manifest(
        status=200, headers=((b"content-type", b"text/plain"),), size=2, segment_size=4,
        write_id="w1", etag='"e"', stored_at=stored_at,
        expires_at=None if ttl is None else stored_at + ttl, inline=b"hi", token="t",
    )  # fmt: skip


@pytest.mark.parametrize("ttl", [None, 1, 3, 1.5, 2.25, 60])
@pytest.mark.parametrize("stored_at", [1000.0, 1000.4, 1000.999])
def test_headers_stay_the_same_until_then_and_change_there(
    stored_at: float, ttl: float | None
) -> None:
    end = stored_at + (ttl or 5)
    now = stored_at - 0.5  # another process's clock may be a little ahead
    while now < end:
        until = hit_headers_until(entry(stored_at, ttl), now)
        assert now <= until and (ttl is None or until <= end)
        if until == now:  # a whole second of freshness left just now: it changes next
            now += 0.001
            continue
        same = headers(entry(stored_at, ttl), now)
        step = (until - now) / 7
        assert all(headers(entry(stored_at, ttl), now + step * i) == same for i in range(7))
        now = until + 0.001
        if now < end:  # then another second counts
            assert headers(entry(stored_at, ttl), now) != same
