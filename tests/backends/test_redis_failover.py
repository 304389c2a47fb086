"""Failover: a Sentinel-watched primary SIGKILLed while a FallbackCache over
``RedisCache(client=sentinel_master(...))`` keeps serving. No call fails, the replica is
promoted, the client follows it, and nothing written or deleted during the failover is
served stale afterwards."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from aiocache_ext import FallbackCache, RedisCache, State, sentinel_master

from ..servers import RedisSentinelSet

pytestmark = [pytest.mark.redis, pytest.mark.topology]

FAILOVER_LIMIT = 30.0  # seconds: sentinel notices in 1 s, promotes within a few


@pytest.fixture
def sentinels() -> Iterator[RedisSentinelSet]:
    started = RedisSentinelSet()
    try:
        started.start()
        yield started
    finally:
        started.kill()


async def test_sentinel_failover_under_a_fallback_cache(sentinels: RedisSentinelSet) -> None:
    client = sentinel_master([("127.0.0.1", sentinels.sentinel_port)], sentinels.service)
    changes: list[tuple[State, State]] = []
    cache = FallbackCache(
        primary=RedisCache(client=client, namespace="app"), namespace="app",
        primary_timeout=0.5, on_state_change=lambda old, new, error: changes.append((old, new)),
    )  # fmt: skip
    try:
        for i in range(20):
            assert await cache.set(f"k{i}", i)
        assert await cache.set("doomed", "old")
        await asyncio.sleep(0.2)  # setup: the replica has the writes (asynchronous replication)
        sentinels.primary.kill()
        deadline = time.monotonic() + FAILOVER_LIMIT
        step = 0
        while sentinels.master_port() != sentinels.replica.port or cache.state is not State.CLOSED:
            assert time.monotonic() < deadline, (sentinels.master_port(), cache.state)
            # Calls during the failover: answered (from memory while Redis is away).
            assert await cache.set(f"during{step}", step)
            assert await cache.get(f"during{step}") == step
            if step == 0:
                assert await cache.delete("doomed") in (0, 1)
            step += 1
            await asyncio.sleep(0.05)
        assert step > 0
        # On the promoted replica: the writes from before, the deletion from during.
        assert [await cache.get(f"k{i}") for i in range(20)] == list(range(20))
        assert await cache.get("doomed") is None
        assert await cache.set("after", "new")
        assert await cache.get("after") == "new"
        assert (State.CLOSED, State.OPEN) in changes and changes[-1][1] is State.CLOSED
    finally:
        await cache.close()
        await client.aclose()
