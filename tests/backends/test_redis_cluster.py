"""``aiocache_ext.RedisCache`` over a real 3-primary + 3-replica Redis Cluster: aiocache's
operations across slots, streamed entries replayed one MGET per batch on one node,
namespaces dropped on every primary, FallbackCache, and the config-dict form."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator

import pytest
import redis
from aiocache import caches
from redis.asyncio.cluster import RedisCluster
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

from aiocache_ext import FallbackCache, RedisCache, State, invalidate, stream_cached

from ..helpers import client_for
from ..servers import RedisCluster as ClusterServers

pytestmark = [pytest.mark.redis, pytest.mark.topology]

SEGMENT = 1024
BODY = b"".join(hashlib.sha256(bytes([i])).digest() * 32 for i in range(40))  # 40 segments


@pytest.fixture
def cluster(cluster_servers: ClusterServers) -> ClusterServers:
    return cluster_servers  # the session's (conftest)


@pytest.fixture
async def cache(cluster: ClusterServers) -> AsyncIterator[RedisCache]:
    client = RedisCluster(host=cluster.host, port=cluster.port)
    made = RedisCache(client=client, namespace="c")
    try:
        yield made
    finally:
        await client.flushall(target_nodes=RedisCluster.PRIMARIES)
        await client.aclose()


def stats(cluster: ClusterServers, command: str) -> dict[int, int]:
    """Calls of ``command`` per primary port since the last reset."""
    counts = {}
    for node in cluster.primaries():
        line = [x for x in cluster.info(node, "info commandstats").splitlines()
                if x.startswith(f"cmdstat_{command}:")]  # fmt: skip
        counts[node.port] = int(line[0].split("calls=")[1].split(",")[0]) if line else 0
    return counts


def reset_stats(cluster: ClusterServers) -> None:
    for node in cluster.primaries():
        cluster.info(node, "config resetstat")


def primaries_holding(cluster: ClusterServers, pattern: str) -> int:
    """How many primaries hold a key matching ``pattern``."""
    held = 0
    for node in cluster.primaries():
        client = redis.Redis(host=node.host, port=node.port)
        try:
            held += bool(client.keys(pattern))
        finally:
            client.close()
    return held


async def test_aiocache_operations_across_slots(cache: RedisCache) -> None:
    keys = [f"k{i}" for i in range(30)]  # spread over every primary
    assert await cache.multi_set([(k, {"n": i}) for i, k in enumerate(keys)], ttl=30)
    assert await cache.multi_get(keys) == [{"n": i} for i in range(30)]
    assert await cache.multi_set([("plain", 1), ("other", 2)])
    assert await cache.multi_get(["plain", "nothing", "other"]) == [1, None, 2]
    assert await cache.add("new", "v", ttl=0.5)
    with pytest.raises(ValueError, match="already exists"):
        await cache.add("new", "w")
    assert await cache.increment("counter", 3) == 3
    assert await cache.exists("k1")
    assert await cache.expire("k1", 100)
    assert await cache.delete("k1") == 1
    assert await cache.get("k1") is None


async def test_a_namespace_is_cleared_on_every_primary(
    cache: RedisCache, cluster: ClusterServers
) -> None:
    await cache.multi_set([(f"k{i}", i) for i in range(30)])
    await cache.set("kept", 1, namespace="other")
    assert primaries_holding(cluster, "c:*") == 3
    assert await cache.clear(namespace="c")
    assert primaries_holding(cluster, "c:*") == 0
    assert await cache.get("kept", namespace="other") == 1


def streaming_app(cache: RedisCache, calls: list[int]) -> Starlette:
    @stream_cached(cache=cache, ttl=60, key="entry", key_host=False, segment_size=SEGMENT)
    async def route(request: Request) -> StreamingResponse:
        calls.append(1)

        async def body() -> AsyncIterator[bytes]:
            for start in range(0, len(BODY), 3000):
                yield BODY[start : start + 3000]

        return StreamingResponse(body(), media_type="application/octet-stream")

    return Starlette(routes=[Route("/", route)])


async def test_a_streamed_entry_replays_one_mget_per_batch_on_one_node(
    cache: RedisCache, cluster: ClusterServers
) -> None:
    calls: list[int] = []
    async with client_for(streaming_app(cache, calls)) as client:
        miss = await client.get("/")
        reset_stats(cluster)
        hit = await client.get("/")
    assert miss.content == hit.content == BODY
    assert (miss.headers["x-cache"], hit.headers["x-cache"]) == ("MISS", "HIT")
    assert calls == [1]
    mgets = stats(cluster, "mget")
    batches = -(-len(BODY) // SEGMENT // 8)  # 8 segments per read
    # The lookup reads the manifest and the namespace token (two slots: one MGET each);
    # every segment batch is one MGET, on the one node holding the write's slot.
    assert sum(mgets.values()) == batches + 2
    assert max(mgets.values()) >= batches


async def test_invalidate_reaches_every_primary(cache: RedisCache, cluster: ClusterServers) -> None:
    calls: list[int] = []
    async with client_for(streaming_app(cache, calls)) as client:
        await client.get("/")
        await cache.multi_set([(f"k{i}", i) for i in range(30)])
        dropped = await invalidate(namespace="c", cache=cache)
        assert dropped > 30
        again = await client.get("/")
    assert again.headers["x-cache"] == "MISS"
    assert calls == [1, 1]
    assert await cache.multi_get(["k1", "k2"]) == [None, None]


async def test_fallback_cache_over_a_cluster(cache: RedisCache) -> None:
    fallback = FallbackCache(primary=cache, namespace="f", primary_timeout=1.0)
    assert await fallback.set("k", "v")
    assert await fallback.get("k") == "v"
    assert await cache.get("k", namespace="f") == "v"  # on the cluster, not in memory
    assert fallback.state is State.CLOSED


async def test_the_config_dict_form(cluster: ClusterServers) -> None:
    caches.set_config({
        "default": {"cache": "aiocache.SimpleMemoryCache"},
        "shared": {
            "cache": "aiocache_ext.RedisCache",
            "namespace": "conf",
            "client": {"class": "redis.asyncio.RedisCluster",
                       "host": cluster.host, "port": cluster.port},
        },
    })  # fmt: skip
    try:
        cache = caches.get("shared")
        assert isinstance(cache, RedisCache) and cache.cluster
        assert await cache.multi_set([(f"k{i}", i) for i in range(10)])
        assert await cache.multi_get([f"k{i}" for i in range(10)]) == list(range(10))
        await cache.clear(namespace="conf")
        await cache.close()  # built from the dict: closed with the cache
    finally:
        caches._caches = {}
        caches.set_config({"default": {"cache": "aiocache.SimpleMemoryCache"}})


async def test_concurrent_misses_on_a_cluster_make_one_call(cache: RedisCache) -> None:
    calls: list[int] = []
    async with client_for(streaming_app(cache, calls)) as client:
        responses = await asyncio.gather(*(client.get("/") for _ in range(20)))
    assert calls == [1]
    assert all(r.content == BODY for r in responses)


async def test_a_burst_past_every_node_pool_queues(cluster: ClusterServers) -> None:
    """Each node's pool holds 10 connections here (redis-py 8: 100) and raises when full:
    100 concurrent requests for 100 entries are queued, not failed, and each entry is
    stored once and then hit."""
    client = RedisCluster(host=cluster.host, port=cluster.port, max_connections=10)
    cache = RedisCache(client=client, namespace="burst")
    calls: list[str] = []

    @stream_cached(cache=cache, ttl=60, key_builder=lambda f, request: request.url.path)
    async def item(request: Request) -> StreamingResponse:
        calls.append(request.url.path)
        return StreamingResponse(iter([request.url.path.encode() * 100]))

    app = Starlette(routes=[Route("/item/{n:int}", item)])
    paths = [f"/item/{n}" for n in range(100)]
    try:
        async with client_for(app) as http:
            for expected in ("MISS", "HIT"):
                responses = await asyncio.gather(*(http.get(p) for p in paths))
                assert [r.content for r in responses] == [p.encode() * 100 for p in paths]
                assert {r.headers["x-cache"] for r in responses} == {expected}
        assert sorted(calls) == sorted(paths)
    finally:
        await cache.clear(namespace="burst")
        await client.aclose()
