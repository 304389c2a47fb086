"""The backend adapter against real servers: each backend recognised, and what only it
knows (ping, deleting many keys or a prefix, reconnecting, the key limit) doing its job."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from aiocache import Cache
from aiocache.base import BaseCache

from aiocache_ext import FallbackCache
from aiocache_ext.backends import adapter
from aiocache_ext.backends.adapter import backend_of
from aiocache_ext.streaming.store import SegmentStore

from ..servers import MemcachedServer

KINDS = {
    "memory": adapter.MemoryBackend,
    "redis": adapter.RedisBackend,
    "memcached": adapter.MemcachedBackend,
    "valkey": adapter.RedisBackend,
    "cluster": adapter.RedisClusterBackend,
}


async def test_each_backend_is_recognised_and_answers_a_ping(
    cache: BaseCache, backend: str
) -> None:
    found = backend_of(cache)
    assert type(found) is KINDS[backend]
    await found.ping()
    assert found.local is (backend == "memory")
    assert found.never_cancel is (backend == "memcached")
    if backend in ("redis", "valkey"):  # a finite pool raises when full (redis-py 6+: 100)
        pool = cache.client.connection_pool
        size = pool.max_connections
        assert found.pool == ((pool, size) if size < 2**30 else None)
    elif backend == "cluster":  # one per node, the same size (redis-py 8: 100)
        client = cache.client
        size = client.connection_kwargs["max_connections"]
        assert found.pool == ((client, size) if size < 2**30 else None)
    else:
        assert found.pool is None
    assert found.expiry(0.2) == (1 if backend == "memcached" else 0.2)


async def test_many_keys_and_a_prefix_are_deleted(cache: BaseCache, backend: str) -> None:
    keys = [f"k{i}" for i in range(1200)]  # more than one batch
    assert await cache.multi_set([(k, 1) for k in keys])
    assert await cache.set("other", 1, namespace="elsewhere")
    found = backend_of(cache)
    await found.delete_many([cache.build_key(k) for k in keys[:700]])
    assert await cache.multi_get(keys[695:705]) == [None] * 5 + [1] * 5
    dropped = await found.delete_prefix(cache.build_key(""))
    if backend == "memcached":
        assert dropped == -1  # it cannot list keys
    else:
        assert dropped == 500
        assert await cache.multi_get(keys[700:]) == [None] * 500
    assert await cache.get("other", namespace="elsewhere") == 1


async def test_after_a_reconnect_the_cache_still_answers(cache: BaseCache) -> None:
    assert await cache.set("k", "v")
    await backend_of(cache).reconnect()
    assert await cache.get("k") == "v"


async def test_keys_are_fitted_to_the_backends_own_limit(
    cache_factory: Callable[..., BaseCache], backend: str
) -> None:
    cache = cache_factory(namespace="fit")
    store = SegmentStore(cache)
    long_key = "k" * 400
    built = store.key(long_key)
    if backend == "memcached":
        assert len(built) == 250  # memcached refuses longer keys: a digest past it
    else:
        assert built.endswith(long_key)  # Redis and memory keep the key whole
    await store.put_segment(long_key, b"v", 60)
    assert await store.get_segments([long_key]) == [b"v"]


@pytest.mark.memcached
async def test_a_fallback_cache_fits_its_keys_to_its_primary(
    memcached_server: MemcachedServer,
) -> None:
    primary = Cache(Cache.MEMCACHED, endpoint=memcached_server.host, port=memcached_server.port)
    fallback = FallbackCache(primary=primary, namespace="fit")
    try:
        assert backend_of(fallback).max_key_bytes == 250
        store = SegmentStore(fallback)
        await store.put_segment("k" * 400, b"v", 60)
        assert await store.get_segments(["k" * 400]) == [b"v"]
        assert fallback.state.value == "closed"  # memcached took the key: no outage
    finally:
        await fallback.close()
