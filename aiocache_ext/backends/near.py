"""``NearCache``: Redis-backed hits at memory speed, coherent across processes."""

from __future__ import annotations

from collections.abc import Awaitable, Iterable, Sequence
from typing import Any, TypeVar

from aiocache.base import BaseCache
from aiocache.serializers import JsonSerializer

from .. import events
from .._config import build
from ..ttl import parse_ttl
from .near_tier import ABSENT, LocalTier, decoded
from .tracking import ClusterLinks, InvalidationLink

MiB = 1024 * 1024
T = TypeVar("T")


class NearCache(BaseCache):  # type: ignore[misc]
    """A ``BaseCache`` over a Redis ``remote`` with an in-process tier in front of it,
    bounded by ``max_bytes``, kept coherent by Redis's server-assisted invalidation.

    A read is answered from the near tier when it holds the key, else from Redis (the
    value and its remaining ttl in one round trip), and kept for at most ``local_ttl``
    seconds and never longer than the key has left in Redis. Writes go to Redis. Every
    change to a key under the tracked ``prefixes`` (default: this cache's namespace; an
    empty list: every key), by any process, is announced on this cache's invalidation
    link (``tracking.InvalidationLink``), which drops it from the near tier; while the
    link is down or in doubt the tier is empty and bypassed. ``remote`` is aiocache's
    ``RedisCache`` or ours (a single node, TLS, unix socket, a Sentinel master, or a
    Redis Cluster: a link per primary, ``tracking.ClusterLinks``), or a config dict.
    It owns the serializer, plugins and namespace, like any aiocache cache, and
    ``stream_cached(cache=NearCache(...))`` keeps manifests and small bodies near.
    """

    NAME = "near"

    def __init__(
        self,
        remote: Any = None,
        max_bytes: int = 64 * MiB,
        local_ttl: Any = 60,
        prefixes: Sequence[str] | None = None,
        ping_interval: float = 1.0,
        serializer: Any = None,
        **kwargs: Any,
    ) -> None:
        if remote is None:
            raise ValueError("NearCache needs a remote Redis cache, e.g. Cache(Cache.REDIS, ...)")
        if kwargs.get("ttl") is not None:
            kwargs["ttl"] = parse_ttl(kwargs["ttl"])
        super().__init__(serializer=serializer or JsonSerializer(), **kwargs)
        self.remote: BaseCache = build(remote, BaseCache, "cache")
        client: Any = getattr(self.remote, "client", None)
        self.client: Any = client
        self.tier = LocalTier(int(max_bytes))
        self.local_ttl = float(parse_ttl(local_ttl, "local_ttl") or 0)
        if prefixes is None:
            prefixes = [self.build_key("")] if self.namespace else []
        self.prefixes = tuple(prefixes)
        link_options = (self.prefixes, self._invalidated, self._flushed, ping_interval)
        self.link: InvalidationLink | ClusterLinks
        if hasattr(client, "get_primaries"):  # a Redis Cluster: a link per primary
            if getattr(client, "read_from_replicas", False) or getattr(
                client, "load_balancing_strategy", None
            ):
                raise ValueError(
                    "NearCache cannot keep values read from a cluster's replicas: a replica "
                    "may answer with a value its primary already changed, after the change "
                    "was announced. HINT: RedisCluster(..., read_from_replicas=False)"
                )
            self.link = ClusterLinks(client, *link_options)
        elif hasattr(client, "connection_pool"):
            self.link = InvalidationLink(client.connection_pool, *link_options)
        else:
            raise TypeError(
                f"NearCache keeps its tier coherent with Redis's server-assisted invalidation, "
                f"and {self.remote!r} is not a Redis cache. HINT: "
                "NearCache(Cache(Cache.REDIS, ...)) or NearCache(aiocache_ext.RedisCache(client="
                "redis.asyncio.Redis(...))), also with a RedisCluster or sentinel_master client"
            )

    def __repr__(self) -> str:
        return f"NearCache(remote={self.remote!r}, keys={len(self.tier)})"

    def _build_key(self, key: Any, namespace: str | None = None) -> Any:
        return self.remote.build_key(
            key, namespace=self.namespace if namespace is None else namespace
        )

    def _tracked(self, key: Any) -> bool:
        return isinstance(key, str) and key.startswith(self.prefixes or ("",))

    def _flushed(self) -> None:
        """The link was lost, or Redis announced a flush: nothing near can be trusted."""
        self.tier.flush()
        events.emit("near_flush", cache=self.namespace or "default")

    def _invalidated(self, keys: list[bytes]) -> None:
        self.tier.invalidate(k.decode("utf-8", "surrogateescape") for k in keys)

    # Reads: the near tier, then Redis.

    async def _get(self, key: Any, encoding: str | None = "utf-8", _conn: Any = None) -> Any:
        return (await self._read([key], encoding))[0]

    async def _multi_get(self, keys: Any, encoding: str | None = "utf-8", _conn: Any = None) -> Any:
        return await self._read(list(keys), encoding)

    def held(self, keys: Sequence[Any], encoding: str | None = "utf-8") -> list[Any] | None:
        """The values of built ``keys`` when the near tier holds them all (``None`` for a
        key known to be absent), read without a round trip: no timeout to arm, no pooled
        connection to wait for. ``None`` when one of them must be read from Redis."""
        values = self.held_raw(keys)
        return None if values is None else decoded(values, encoding)

    def held_raw(self, keys: Sequence[Any]) -> list[Any] | None:
        """``held``'s values as the tier keeps them (``bytes``, not decoded). Tells a
        ``near_hit``; a miss is told by the read that then goes to Redis."""
        if not self.link.ready:
            return None
        tier, values = self.tier, []
        for key in keys:
            found = tier.get(key)
            if found is None:
                return None
            values.append(None if found is ABSENT else found)
        events.emit("near_hit", cache=self.namespace or "default")
        return values

    async def _read(self, keys: list[Any], encoding: str | None) -> list[Any]:
        self.link.start()
        held = self.held(keys, encoding)
        if held is not None:
            return held
        events.emit("near_miss", cache=self.namespace or "default")
        tier, ready = self.tier, self.link.ready
        values: list[Any] = [None] * len(keys)
        missing = []
        for index, key in enumerate(keys):
            found = tier.get(key) if ready else None
            if found is None:
                missing.append(index)
            elif found is not ABSENT:
                values[index] = found
        wanted = [keys[i] for i in missing]
        tickets = [tier.begin(k) if ready and self._tracked(k) else None for k in wanted]
        async with self.client.pipeline(transaction=False) as pipe:
            for key in wanted:  # a GET each, not an MGET: on a cluster they span slots
                pipe.get(key)
                pipe.pttl(key)
            replies = await pipe.execute()
        raws, ttls = replies[::2], replies[1::2]
        for index, key, ticket, raw, ttl in zip(missing, wanted, tickets, raws, ttls):
            values[index] = raw
            if ticket is not None:
                tier.fill(key, ticket, ABSENT if raw is None else raw, self._keep(ttl))
        return decoded(values, encoding)

    def _keep(self, pttl: int) -> float:
        """How long to keep a value near: ``local_ttl``, capped by the key's remaining
        ttl (expiry is announced late: Redis expires keys lazily)."""
        return self.local_ttl if pttl < 0 else min(self.local_ttl, pttl / 1000)

    async def _gets(self, key: Any, encoding: str | None = "utf-8", _conn: Any = None) -> Any:
        return await self.remote._gets(key, encoding=encoding)

    async def _exists(self, key: Any, _conn: Any = None) -> Any:
        return await self.remote._exists(key)

    # Writes: Redis, then the near tier forgets the keys (the link announces them to the
    # other processes, and to this one a moment later).

    async def _written(self, call: Awaitable[T], keys: Iterable[Any] | None) -> T:
        """``call`` (a write to Redis); then, whether it succeeded or not (a write that
        failed may still have landed), the tier forgets ``keys`` (``None``: everything)."""
        try:
            return await call
        finally:
            if keys is None:
                self.tier.flush()
            else:
                self.tier.invalidate(keys)

    async def _set(
        self, key: Any, value: Any, ttl: Any = None, _cas_token: Any = None, _conn: Any = None
    ) -> Any:
        return await self._written(
            self.remote._set(key, value, ttl=ttl, _cas_token=_cas_token), [key]
        )

    async def _multi_set(self, pairs: Any, ttl: Any = None, _conn: Any = None) -> Any:
        pairs = list(pairs)
        return await self._written(self.remote._multi_set(pairs, ttl=ttl), [k for k, _ in pairs])

    async def _add(self, key: Any, value: Any, ttl: Any = None, _conn: Any = None) -> Any:
        return await self._written(self.remote._add(key, value, ttl=ttl), [key])

    async def _increment(self, key: Any, delta: int, _conn: Any = None) -> Any:
        return await self._written(self.remote._increment(key, delta), [key])

    async def _expire(self, key: Any, ttl: Any, _conn: Any = None) -> Any:
        return await self._written(self.remote._expire(key, ttl=ttl), [key])

    async def _delete(self, key: Any, _conn: Any = None) -> Any:
        return await self._written(self.remote._delete(key), [key])

    async def _clear(self, namespace: str | None = None, _conn: Any = None) -> Any:
        return await self._written(self.remote._clear(namespace), None)

    async def _raw(self, command: str, *args: Any, **kwargs: Any) -> Any:
        # It may have changed any key.
        return await self._written(self.remote._raw(command, *args, **kwargs), None)

    async def _redlock_release(self, key: Any, value: Any) -> Any:
        return await self._written(self.remote._redlock_release(key, value), [key])

    async def _close(self, *args: Any, **kwargs: Any) -> None:
        await self.link.stop()
        await self.remote.close()
