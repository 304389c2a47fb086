"""What differs between aiocache's backends, in one place.

Everything else talks to a cache through aiocache's own hooks (``_get``, ``_multi_get``,
``_set``, ``_delete``, ...), which every ``BaseCache`` implements. What those hooks cannot
say lives here, one class per backend: whether the cache is in-process (no timeout to
arm, reads free to share), whether a call may be cancelled halfway (never on
memcached), the longest key, how a ttl is given, the finite connection pool a burst
must queue for, how to ping, how to delete many keys or a whole prefix, and how to drop
pooled connections a restart killed. Deleting a prefix spares the segments of stored
streams for ``SEGMENT_GRACE`` (they are given that long to expire): a replay under way
when its entry was invalidated still finishes whole. A backend is recognised by its
aiocache class, so subclasses are recognised too; anything else gets the generic
answers.
"""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from aiocache.backends.memory import SimpleMemoryBackend
from aiocache.base import BaseCache

from ..backend_keys import MEMCACHED_MAX_KEY_BYTES, fit
from ..streaming.format import SEGMENT_GRACE, is_segment_key
from ..ttl import memcached_expiry
from .near_tier import LocalTier, decoded

T = TypeVar("T")
Step = Callable[[Awaitable[Any]], Awaitable[Any]]
#: Keys per backend call when deleting many.
BATCH = 500
_GLOB_SPECIAL = re.compile(r"([\\*?\[\]])")


async def as_is(call: Awaitable[T]) -> T:
    """The ``step`` that awaits a backend call as it is."""
    return await call


class Backend:
    """Any ``BaseCache``, through its own hooks only."""

    #: In-process: nothing to time out, nothing gained by sharing a read.
    local = False
    #: aiomcache hands a connection back with the reply unread when a call is cancelled.
    never_cancel = False
    #: The longest key the server takes (``None``: no practical limit).
    max_key_bytes: int | None = None

    def __init__(self, cache: BaseCache) -> None:
        self.cache = cache

    @property
    def sources(self) -> list[BaseCache]:
        """Where a stored stream's segments are read from, in order of preference."""
        return [self.cache]

    async def empty(self) -> None:
        """Drop every key (``FallbackCache`` empties its fallback after an outage)."""
        await self.cache._clear(None)

    @property
    def pool(self) -> tuple[Any, int] | None:
        """A finite connection pool that raises when full (redis-py), as the object that
        holds it and its size; else ``None``."""
        return None

    def expiry(self, ttl: float | None) -> Any:
        """``ttl`` as this backend takes it."""
        return ttl

    def key_fitter(self, namespace: str | None = None) -> Callable[[str], str]:
        """What makes a key fit this backend's limit once ``namespace`` (``None``: the
        cache's own) is prepended; the identity where there is no limit (every hit
        builds keys)."""
        limit = self.max_key_bytes
        if limit is None:
            return _same_key
        prefix = self.cache.build_key("", namespace=namespace)
        prefix_bytes = len(prefix.encode() if isinstance(prefix, str) else prefix)
        return functools.partial(fit, prefix_bytes=prefix_bytes, limit=limit)

    def held_raw(self, keys: Sequence[Any]) -> list[Any] | None:
        """The values of built ``keys`` when this process holds them all (in-process
        memory, a near tier), read without a round trip or an ``await``, as it keeps
        them: the very same objects from one read to the next until the key is written,
        deleted, expires or is invalidated (so what was prepared from them stays good
        while they are the ones held). ``None``: read them from the backend."""
        return None

    def decoded(self, raws: list[Any], encoding: str | None) -> list[Any]:
        """``held_raw``'s values as a read with ``encoding`` returns them."""
        return raws

    async def ping(self) -> None:
        await self.cache._exists(self.cache.build_key("aiocache_ext:probe"))

    async def delete_many(self, keys: Sequence[Any], step: Step = as_is) -> None:
        """Delete built keys, a batch per ``step`` (which may bound each call)."""
        for start in range(0, len(keys), BATCH):
            batch = keys[start : start + BATCH]
            await step(asyncio.gather(*(self.cache._delete(k) for k in batch)))

    async def delete_prefix(self, prefix: Any, step: Step = as_is) -> int:
        """Delete every key starting with the built ``prefix``; how many (-1: this backend
        cannot list keys, so nothing was deleted)."""
        return -1

    async def reconnect(self) -> None:
        """Drop pooled connections (after an outage: they are dead)."""


class MemoryBackend(Backend):
    local = True

    def held_raw(self, keys: Sequence[Any]) -> list[Any] | None:
        """Everything is held: a key this process does not have is absent."""
        return list(map(self.cache._cache.get, keys))

    async def delete_prefix(self, prefix: Any, step: Step = as_is) -> int:
        matching = [k for k in list(self.cache._cache) if _starts_with(k, prefix)]
        await self._drop(matching)
        return len(matching)

    async def empty(self) -> None:
        """Every key, but segments expire within ``SEGMENT_GRACE``. No call yields: no
        operation can slip in while it runs."""
        await self._drop(list(self.cache._cache))

    async def _drop(self, keys: list[Any]) -> None:
        segments, others = _segments_apart(keys)
        for key in segments:
            await self.cache._expire(key, SEGMENT_GRACE)
        for key in others:
            await self.cache._delete(key)


class RedisBackend(Backend):
    @property
    def pool(self) -> tuple[Any, int] | None:
        pool = getattr(self.cache.client, "connection_pool", None)
        return _finite(pool, getattr(pool, "max_connections", None))

    async def ping(self) -> None:
        await self.cache.client.ping()

    async def delete_many(self, keys: Sequence[Any], step: Step = as_is) -> None:
        for start in range(0, len(keys), BATCH):
            await step(self.cache.client.unlink(*keys[start : start + BATCH]))

    async def delete_prefix(self, prefix: Any, step: Step = as_is) -> int:
        """``SCAN MATCH`` + ``UNLINK`` in short steps (Redis serves others between them),
        never ``KEYS``."""
        client, pattern = self.cache.client, _glob(prefix)
        dropped, cursor = 0, 0
        while True:
            cursor, keys = await step(client.scan(cursor, match=pattern, count=1000))
            dropped += await self._drop(keys, step)
            if not cursor:
                return dropped

    async def _drop(self, keys: list[bytes], step: Step) -> int:
        """``UNLINK`` the keys, except segments: those expire within ``SEGMENT_GRACE``
        (one pipeline, no transaction: on a cluster, grouped per node)."""
        segments, others = _segments_apart(keys)
        if others:
            await step(self.cache.client.unlink(*others))
        if segments:
            async with self.cache.client.pipeline(transaction=False) as pipe:
                for key in segments:
                    pipe.expire(key, int(SEGMENT_GRACE))
                await step(pipe.execute())
        return len(keys)

    async def reconnect(self) -> None:
        await self.cache.client.connection_pool.disconnect()


class RedisClusterBackend(RedisBackend):
    """A Redis Cluster: each node has a pool of its own, and a prefix lives on every
    primary (redis-py splits multi-key commands per slot)."""

    @property
    def pool(self) -> tuple[Any, int] | None:
        """Each node has a pool of ``max_connections`` (redis-py 8: 100) that raises when
        full: calls through the client are queued at that size, which no node's pool can
        then exceed (a burst waits a little longer than the nodes would make it)."""
        client = self.cache.client
        return _finite(client, client.connection_kwargs.get("max_connections"))

    async def delete_prefix(self, prefix: Any, step: Step = as_is) -> int:
        client, pattern = self.cache.client, _glob(prefix)
        dropped = 0
        for node in client.get_primaries():
            cursor = 0
            while True:
                scan = client.scan(cursor=cursor, match=pattern, count=1000, target_nodes=node)
                cursors, keys = await step(scan)
                dropped += await self._drop(keys, step)
                cursor = cursors[node.name]
                if not cursor:
                    break
        return dropped

    async def ping(self) -> None:
        """The whole cluster answers: its map read again (a replica promoted since is a
        primary now, a killed primary gone), then every primary pinged."""
        from redis.asyncio.cluster import RedisCluster

        await self.cache.client.nodes_manager.initialize()
        await self.cache.client.ping(target_nodes=RedisCluster.PRIMARIES)

    async def reconnect(self) -> None:
        """Nothing to do: ``ping`` read the cluster's map again."""


class NearBackend(Backend):
    """``NearCache``: the adapter of its remote Redis (one node or a cluster) for what
    goes to Redis, and its near tier forgets what is deleted at once (the other
    processes hear of it through their invalidation links)."""

    def __init__(self, cache: BaseCache) -> None:
        super().__init__(cache)
        self.remote = backend_of(cache.remote)
        self.max_key_bytes = self.remote.max_key_bytes

    def held_raw(self, keys: Sequence[Any]) -> list[Any] | None:
        return self.cache.held_raw(keys)  # type: ignore[no-any-return]

    def decoded(self, raws: list[Any], encoding: str | None) -> list[Any]:
        return decoded(raws, encoding)

    @property
    def pool(self) -> tuple[Any, int] | None:
        return self.remote.pool

    async def ping(self) -> None:
        await self.remote.ping()

    async def reconnect(self) -> None:
        await self.remote.reconnect()

    async def delete_many(self, keys: Sequence[Any], step: Step = as_is) -> None:
        try:
            await self.remote.delete_many(keys, step)
        finally:
            self.cache.tier.invalidate(keys)

    async def delete_prefix(self, prefix: Any, step: Step = as_is) -> int:
        try:
            return await self.remote.delete_prefix(prefix, step)
        finally:
            self.cache.tier.flush()


class MemcachedBackend(Backend):
    never_cancel = True
    max_key_bytes = MEMCACHED_MAX_KEY_BYTES

    def expiry(self, ttl: float | None) -> Any:
        return memcached_expiry(ttl)  # whole seconds, rounded up

    async def ping(self) -> None:
        await self.cache.client.version()

    async def reconnect(self) -> None:
        await self.cache.client.close()


class RoutedBackend(Backend):
    """A cache that routes to another (``FallbackCache``): its keys must fit the
    primary's limit, and it bounds and routes its own calls."""

    def __init__(self, cache: BaseCache, primary: BaseCache) -> None:
        super().__init__(cache)
        self.max_key_bytes = backend_of(primary).max_key_bytes
        self.tiers = [primary, *[t for t in [getattr(cache, "fallback", None)] if t is not None]]

    @property
    def sources(self) -> list[BaseCache]:
        """The routed cache, then each tier directly: the breaker may switch tiers while
        a replay reads, and segments are checked, so wherever they are is good."""
        return [self.cache, *self.tiers]


def backend_of(cache: BaseCache) -> Backend:
    """The adapter for ``cache``."""
    if isinstance(cache, SimpleMemoryBackend):
        return MemoryBackend(cache)
    if isinstance(getattr(cache, "tier", None), LocalTier):
        return NearBackend(cache)
    primary = getattr(cache, "primary", None)
    if isinstance(primary, BaseCache):
        return RoutedBackend(cache, primary)
    for module, name, adapter in _OPTIONAL:
        kind = _optional_class(module, name)
        if kind is not None and isinstance(cache, kind):
            return adapter(cache)
    return Backend(cache)


def _redis(cache: BaseCache) -> Backend:
    from redis.asyncio.cluster import RedisCluster

    cluster = isinstance(cache.client, RedisCluster)
    return RedisClusterBackend(cache) if cluster else RedisBackend(cache)


_OPTIONAL: list[tuple[str, str, Callable[[BaseCache], Backend]]] = [
    ("aiocache.backends.redis", "RedisBackend", _redis),
    ("aiocache.backends.memcached", "MemcachedBackend", MemcachedBackend),
]


def _optional_class(module: str, name: str) -> type | None:
    """aiocache's backend class, if its client library (an extra) is installed."""
    try:
        found: type = getattr(__import__(module, fromlist=[name]), name)
    except ImportError:
        return None
    return found


def _same_key(key: str) -> str:
    return key


def _segments_apart(keys: list[Any]) -> tuple[list[Any], list[Any]]:
    """The keys of stored streams' segments (let expire within ``SEGMENT_GRACE``: a
    replay may be reading them), and the others (deleted)."""
    segments: list[Any] = []
    others: list[Any] = []
    for key in keys:
        (segments if is_segment_key(key) else others).append(key)
    return segments, others


def _finite(holder: Any, size: Any) -> tuple[Any, int] | None:
    return (holder, size) if isinstance(size, int) and 0 < size < 2**30 else None


def _glob(prefix: Any) -> str:
    """A ``SCAN MATCH`` pattern for keys starting with ``prefix``."""
    text = prefix.decode() if isinstance(prefix, bytes) else str(prefix)
    return _GLOB_SPECIAL.sub(r"\\\1", text) + "*"


def _starts_with(key: Any, prefix: Any) -> bool:
    if isinstance(key, bytes) and isinstance(prefix, str):
        prefix = prefix.encode()
    elif isinstance(key, str) and isinstance(prefix, bytes):
        prefix = prefix.decode()
    return isinstance(key, (str, bytes)) and key.startswith(prefix)
