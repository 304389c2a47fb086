"""FallbackCache wherever aiocache takes a cache: directly, in cached, in config dicts,
under stream_cached."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from aiocache import Cache, cached, caches
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from aiocache_ext import ONE_YEAR, CompressionSerializer, FallbackCache, State, stream_cached

from ..helpers import client_for
from ..servers import MemcachedServer, RedisServer


def redis_config(server: RedisServer) -> dict[str, Any]:
    return {"cache": "aiocache.RedisCache", "endpoint": server.host, "port": server.port}


async def test_as_cache_class_of_cached(redis_server: RedisServer) -> None:
    calls = []

    @cached(cache=FallbackCache, primary=redis_config(redis_server), namespace="dec", ttl=60)
    async def compute(x: int) -> int:
        calls.append(x)
        return x * 2

    try:
        assert [await compute(4) for _ in range(3)] == [8, 8, 8]
        assert calls == [4]
        assert isinstance(compute.cache, FallbackCache)
        assert compute.cache.state is State.CLOSED
    finally:
        await compute.cache.clear(namespace="dec")
        await compute.cache.close()


async def test_from_an_aiocache_config_dict(redis_server: RedisServer) -> None:
    saved = copy.deepcopy(caches.get_config())
    caches.set_config(
        {
            "default": saved["default"],
            "shared": {
                "cache": "aiocache_ext.FallbackCache",
                "primary": redis_config(redis_server),
                "fallback": {"cache": "aiocache.SimpleMemoryCache"},
                "primary_timeout": "0.1",
                "namespace": "cfg",
                "serializer": {"class": "aiocache_ext.CompressionSerializer"},
            },
        }
    )
    cache = caches.create("shared")
    try:
        assert isinstance(cache, FallbackCache)
        assert isinstance(cache.serializer, CompressionSerializer)
        assert cache.primary_timeout == 0.1
        assert await cache.set("k", {"v": [1, 2]})
        assert await cache.get("k") == {"v": [1, 2]}
    finally:
        await cache.clear(namespace="cfg")
        await cache.close()
        caches.set_config(saved)


def test_bad_primaries_are_refused() -> None:
    with pytest.raises(ValueError, match="needs a primary"):
        FallbackCache()
    with pytest.raises(ValueError, match="'cache' entry"):
        FallbackCache(primary={"endpoint": "x"})
    with pytest.raises(TypeError, match="not a subclass of BaseCache"):
        FallbackCache(primary="aiocache.serializers.JsonSerializer")


async def test_stream_cached_keeps_serving_through_a_freeze(
    redis_factory: Callable[[], RedisServer],
) -> None:
    server = redis_factory()
    primary = Cache(Cache.REDIS, endpoint=server.host, port=server.port)
    cache = FallbackCache(primary=primary, namespace="reports")
    calls = []

    @stream_cached(cache=cache, ttl=60, key="report", segment_size=4)
    async def report(request: Request) -> Response:
        calls.append(1)
        return StreamingResponse(iter([b"rows ", b"of ", b"data"]))

    try:
        async with client_for(Starlette(routes=[Route("/", report)])) as client:
            assert (await client.get("/")).headers["x-cache"] == "MISS"
            assert (await client.get("/")).headers["x-cache"] == "HIT"
            server.pause()
            during = [await client.get("/") for _ in range(4)]
            assert [r.content for r in during] == [b"rows of data"] * 4
            assert [r.headers["x-cache"] for r in during] == ["MISS", "HIT", "HIT", "HIT"]
            assert cache.state is not State.CLOSED
            server.resume()
    finally:
        server.resume()
        await cache.close()
    assert len(calls) == 2


@pytest.mark.memcached
async def test_any_ttl_form_reaches_memcached_as_whole_seconds(
    memcached_server: MemcachedServer,
) -> None:
    cache = FallbackCache(
        primary=Cache(Cache.MEMCACHED, endpoint=memcached_server.host, port=memcached_server.port),
        namespace="ttl",
        ttl="1h",
    )
    try:
        assert cache.ttl == 3600
        assert await cache.set("fraction", 1, ttl=0.5)  # memcached wants an int: rounded up
        assert await cache.set("year", 2, ttl=ONE_YEAR)  # past 30 days: a time stamp
        assert await cache.get("fraction") == 1
        assert await cache.get("year") == 2
        assert cache.state is State.CLOSED  # none of it was taken for an outage
    finally:
        await cache.clear(namespace="ttl")
        await cache.close()


def test_a_bad_ttl_fails_at_construction() -> None:
    with pytest.raises(ValueError, match="ttl"):
        FallbackCache(primary=Cache(Cache.MEMORY), ttl="soon")
