"""NearCache against a real redis-server: hits from the near tier cost Redis nothing,
and what another process writes, deletes, invalidates, or what expires, is never served
from it for longer than the link takes to announce it; a lost, killed or frozen link
empties and bypasses the tier. Two "processes" are two NearCache instances, each with
its own client and invalidation link."""

from __future__ import annotations

import asyncio
import time
import uuid
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
import redis
from aiocache import Cache
from redis.asyncio.cluster import RedisCluster
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from aiocache_ext import (
    FallbackCache,
    NearCache,
    RedisCache,
    State,
    events,
    invalidate,
    stream_cached,
)
from aiocache_ext.backends.tracking import ClusterLinks

from ..helpers import client_for, state_of
from ..servers import RedisCluster as ClusterServers
from ..servers import RedisServer

pytestmark = pytest.mark.redis

LIMIT = 10.0  # seconds: generous bound for what the link announces within milliseconds


def near(server: RedisServer, **options: Any) -> NearCache:
    remote = Cache(Cache.REDIS, endpoint=server.host, port=server.port)
    return NearCache(remote, namespace="near", ping_interval=0.2, **options)


async def ready(*caches: NearCache) -> None:
    """Every cache's link is up (it starts with the first read)."""
    deadline = time.monotonic() + LIMIT
    for cache in caches:
        await cache.get("warm-up")
        while not cache.link.ready:
            assert time.monotonic() < deadline, "link never ready"
            await asyncio.sleep(0.01)


async def eventually(read: Callable[[], Any], expected: Any) -> None:
    deadline = time.monotonic() + LIMIT
    while (found := await read()) != expected:
        assert time.monotonic() < deadline, f"still {found!r}, not {expected!r}"
        await asyncio.sleep(0.005)


def reads(server: RedisServer) -> int:
    """Reads Redis has answered (GET, MGET) since its stats were reset."""
    stats = redis.Redis(host=server.host, port=server.port)
    try:
        found = stats.info("commandstats")
    finally:
        stats.close()
    return sum(found.get(f"cmdstat_{c}", {}).get("calls", 0) for c in ("get", "mget"))


@pytest.fixture(params=["redis", pytest.param("valkey", marks=pytest.mark.topology)])
async def pair(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Any, ...]]:
    """A fresh server (Redis, or Valkey), a writer and a reader with their links up."""
    server = request.getfixturevalue(f"{request.param}_factory")()
    writer, reader = near(server), near(server)
    await ready(writer, reader)
    try:
        yield server, writer, reader
    finally:
        await writer.close()
        await reader.close()


async def test_hits_come_from_the_near_tier_and_changes_reach_it(pair: tuple[Any, ...]) -> None:
    server, writer, reader = pair
    await writer.set("k", {"v": 1})
    assert await reader.get("k") == {"v": 1}
    redis.Redis(host=server.host, port=server.port).config_resetstat()
    for _ in range(100):
        assert await reader.get("k") == {"v": 1}
    assert reads(server) == 0  # no round trip
    await writer.set("k", {"v": 2})  # another process writes...
    await eventually(lambda: reader.get("k"), {"v": 2})
    await writer.delete("k")  # ...deletes...
    await eventually(lambda: reader.get("k"), None)
    await writer.set("k", {"v": 3})
    await reader.get("k")
    await writer.clear(namespace="near")  # ...or drops the namespace
    await eventually(lambda: reader.get("k"), None)


async def test_a_process_reads_its_own_writes_at_once(pair: tuple[Any, ...]) -> None:
    _, writer, _ = pair
    for value in range(20):
        await writer.set("mine", value)
        assert await writer.get("mine") == value  # never the value it just replaced


async def test_an_expiring_key_is_never_kept_past_its_ttl(pair: tuple[Any, ...]) -> None:
    _, writer, reader = pair
    written = time.monotonic()
    await writer.set("brief", "v", ttl=0.3)
    assert await reader.get("brief") == "v"
    await asyncio.sleep(max(0.0, written + 0.301 - time.monotonic()))
    # Kept near for the key's remaining ttl at most: gone the moment it expires, although
    # Redis announces an expiry only once it notices it (on access, or in its expiry
    # cycle, up to 100 ms later).
    assert await reader.get("brief") is None


async def test_flushall_empties_every_near_tier(pair: tuple[Any, ...]) -> None:
    server, writer, reader = pair
    await writer.set("k", 1)
    assert await reader.get("k") == 1
    redis.Redis(host=server.host, port=server.port).flushall()
    await eventually(lambda: reader.get("k"), None)


async def test_a_killed_link_empties_and_bypasses_the_tier_until_it_is_back(
    pair: tuple[Any, ...],
) -> None:
    server, writer, reader = pair
    await writer.set("k", 1)
    assert await reader.get("k") == 1
    admin = redis.Redis(host=server.host, port=server.port)
    admin.client_kill_filter(_type="pubsub")  # every invalidation link
    deadline = time.monotonic() + LIMIT
    while reader.link.ready:
        assert time.monotonic() < deadline, "the loss went unnoticed"
        await asyncio.sleep(0.005)
    assert len(reader.tier) == 0
    admin.set("near:k", "2")  # a write nobody announces to the reader
    assert await reader.get("k") == 2  # bypassed: read from Redis
    await ready(reader)
    assert await reader.get("k") == 2
    admin.close()


async def test_a_frozen_redis_is_noticed_by_the_links_ping(pair: tuple[Any, ...]) -> None:
    server, writer, reader = pair
    await writer.set("k", 1)
    assert await reader.get("k") == 1
    server.pause()
    try:
        deadline = time.monotonic() + LIMIT
        while reader.link.ready:  # no pong within the ping interval
            assert time.monotonic() < deadline, "the freeze went unnoticed"
            await asyncio.sleep(0.01)
        assert len(reader.tier) == 0
    finally:
        server.resume()
    await ready(reader)
    await writer.set("k", 2)
    await eventually(lambda: reader.get("k"), 2)


async def test_stream_cached_hits_cost_redis_nothing_and_invalidation_reaches_them(
    redis_factory: Callable[[], RedisServer],
) -> None:
    server = redis_factory()
    calls: list[int] = []

    def process() -> tuple[Starlette, NearCache]:
        cache = near(server)

        @stream_cached(cache=cache, ttl=60, key="report", honor_request_cache_control=True)
        async def report(request: Request) -> JSONResponse:
            calls.append(1)
            return JSONResponse({"calls": len(calls)})

        return Starlette(routes=[Route("/", report)]), cache

    (app_a, cache_a), (app_b, cache_b) = process(), process()
    try:
        await ready(cache_a, cache_b)
        async with client_for(app_a) as a, client_for(app_b) as b:
            assert (await a.get("/")).json() == {"calls": 1}
            assert (await b.get("/")).headers["x-cache"] == "HIT"
            redis.Redis(host=server.host, port=server.port).config_resetstat()
            tally = events.Tally()
            unsubscribe = events.subscribe(tally)
            try:
                for _ in range(20):
                    assert (await b.get("/")).json() == {"calls": 1}
            finally:
                unsubscribe()
            assert reads(server) == 0
            assert tally.near == {("near", "hit"): 20}  # one per request, none twice
            # a's endpoint stores the entry again; then a's invalidation drops it
            await a.get("/", headers={"cache-control": "no-cache"})
            await eventually(lambda: _json(b.get("/")), {"calls": 2})
            assert [(await b.get("/")).json() for _ in range(5)] == [{"calls": 2}] * 5
            await invalidate(namespace="near", cache=cache_a)
            await eventually(lambda: _json(b.get("/")), {"calls": 3})
            assert [(await b.get("/")).json() for _ in range(5)] == [{"calls": 3}] * 5
    finally:
        await cache_a.close()
        await cache_b.close()


async def test_each_read_the_tier_answers_is_told_once(
    redis_factory: Callable[[], RedisServer],
) -> None:
    """A body kept in segments: every hit reads the manifest, then the segments, each
    answered by the tier (told once each, not once more for the first look)."""
    cache = near(redis_factory())

    @stream_cached(cache=cache, ttl=60, key="big", inline_size=0, segment_size=1024)
    async def big(request: Request) -> PlainTextResponse:
        return PlainTextResponse("x" * 3000)

    try:
        await ready(cache)
        async with client_for(Starlette(routes=[Route("/", big)])) as client:
            await client.get("/")
            assert (await client.get("/")).headers["x-cache"] == "HIT"  # the tier filled
            tally = events.Tally()
            unsubscribe = events.subscribe(tally)
            try:
                hits = [await client.get("/") for _ in range(5)]
            finally:
                unsubscribe()
        assert all(h.headers["x-cache"] == "HIT" and h.text == "x" * 3000 for h in hits)
        assert tally.near == {("near", "hit"): 10}  # 5 x (manifest, segments)
    finally:
        await cache.close()


async def _json(response: Awaitable[httpx.Response]) -> Any:
    return (await response).json()


async def test_under_fallback_cache_an_outage_and_recovery(
    redis_factory: Callable[[], RedisServer],
) -> None:
    server = redis_factory()
    inner = near(server)
    cache = FallbackCache(primary=inner, namespace="near", primary_timeout=0.2)
    try:
        await cache.set("k", 1)
        await ready(inner)
        assert await cache.get("k") == 1
        server.pause()
        try:
            assert await cache.set("k", 2)  # on the fallback: the breaker opens
            assert cache.state is not State.CLOSED
            assert await cache.get("k") == 2
        finally:
            server.resume()
        deadline = time.monotonic() + LIMIT
        while state_of(cache) is not State.CLOSED:
            assert time.monotonic() < deadline, "never recovered"
            await asyncio.sleep(0.02)
        assert await cache.get("k") is None  # written during the outage: dropped on Redis
    finally:
        await cache.close()


@pytest.mark.topology
async def test_on_a_cluster_each_primary_announces_its_keys(
    cluster_servers: ClusterServers,
) -> None:
    clients = [RedisCluster(host=cluster_servers.host, port=cluster_servers.port) for _ in "wr"]
    namespace = f"near-{uuid.uuid4().hex}"  # the cluster is shared with other tests
    writer, reader = (
        NearCache(RedisCache(client=c), namespace=namespace, ping_interval=0.2) for c in clients
    )
    keys = [f"k{i}" for i in range(30)]  # over all three primaries
    built = [reader.build_key(k) for k in keys]
    try:
        await writer.multi_set([(k, 0) for k in keys])
        assert await reader.multi_get(keys) == [0] * 30
        deadline = time.monotonic() + LIMIT
        while not reader.link.ready:
            assert time.monotonic() < deadline, "links never ready"
            await asyncio.sleep(0.01)
        assert isinstance(reader.link, ClusterLinks) and len(reader.link.links) == 3
        assert await reader.multi_get(keys) == [0] * 30
        assert reader.held(built, None) is not None  # every key near
        for key in keys:
            await writer.set(key, 1)
        await eventually(lambda: reader.multi_get(keys), [1] * 30)
        await writer.clear()  # the namespace, on every primary
        await eventually(lambda: reader.multi_get(keys), [None] * 30)
    finally:
        for cache in (writer, reader):
            await cache.close()
        for client in clients:
            await client.aclose()


async def test_misconfigurations_fail_at_construction() -> None:
    with pytest.raises(ValueError, match="needs a remote Redis cache"):
        NearCache()
    with pytest.raises(TypeError, match="HINT: NearCache"):
        NearCache(Cache(Cache.MEMORY))
    with warnings.catch_warnings():  # redis-py 5.3+ prefers load_balancing_strategy
        warnings.simplefilter("ignore", DeprecationWarning)
        replicas = RedisCluster(host="127.0.0.1", port=1, read_from_replicas=True)
    with pytest.raises(ValueError, match="HINT: RedisCluster"):
        NearCache(RedisCache(client=replicas))
