"""Failover: a Sentinel-watched primary SIGKILLed while a FallbackCache over
``RedisCache(client=sentinel_master(...))`` keeps serving. No call fails, the replica is
promoted, the client follows it, and nothing written or deleted during the failover is
served stale afterwards."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from aiocache_ext import FallbackCache, NearCache, RedisCache, State, sentinel_master

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


async def test_near_cache_over_sentinel_stays_coherent_across_a_failover(
    sentinels: RedisSentinelSet,
) -> None:
    """Two processes' NearCaches over the Sentinel-watched master: a change reaches the
    other's tier before and after the primary is killed and the replica promoted."""
    clients = [
        sentinel_master([("127.0.0.1", sentinels.sentinel_port)], sentinels.service)
        for _ in range(2)
    ]
    writer, reader = (
        NearCache(RedisCache(client=c), namespace="app", ping_interval=0.2) for c in clients
    )
    try:
        await writer.set("k", 1)
        assert await reader.get("k") == 1
        await until(lambda: reader.link.ready)
        assert await reader.get("k") == 1
        assert len(reader.tier) > 0  # held near
        await writer.set("k", 2)
        await until_read(reader, 2)
        await asyncio.sleep(0.2)  # setup: the replica has the write (asynchronous replication)
        sentinels.primary.kill()
        deadline = time.monotonic() + FAILOVER_LIMIT
        while sentinels.master_port() != sentinels.replica.port:
            assert time.monotonic() < deadline, "no failover"
            await asyncio.sleep(0.05)
        await until(lambda: writer.set("k", 3))  # once the writer's client follows
        await until_read(reader, 3)
        await until(lambda: reader.link.ready)  # tracking on the promoted replica
        await writer.set("k", 4)
        await until_read(reader, 4)
        assert await reader.get("k") == 4
    finally:
        for cache in (writer, reader):
            await cache.close()
        for client in clients:
            await client.aclose()


async def until(condition: Callable[[], Any]) -> None:
    """``condition()`` (awaited if it is a coroutine) true, failures retried, bounded."""
    deadline = time.monotonic() + FAILOVER_LIMIT
    while True:
        try:
            result = condition()
            if inspect.isawaitable(result):
                result = await result
            if result:
                return
        except Exception:  # the client still follows the failover
            pass
        assert time.monotonic() < deadline, "never true"
        await asyncio.sleep(0.02)


async def until_read(cache: NearCache, expected: Any) -> None:
    await until(lambda: _reads(cache, expected))


async def _reads(cache: NearCache, expected: Any) -> bool:
    return bool(await cache.get("k") == expected)
