"""``RedisCache``: aiocache's ``RedisCache`` over a redis-py client you built.

aiocache 0.12 builds its own single-node client from ``endpoint``/``port``/``password``:
no TLS options, no ACL user, no Cluster, no Sentinel. Here the client is yours (or is
built from a config dict), and the few operations that differ on a Redis Cluster are
done the cluster's way: multi-key reads and writes are split per slot (``MGET`` per
slot, never across), namespace clears walk every primary with ``SCAN`` (never
``KEYS``), and ``multi_set`` with a ttl needs no transaction. Everything else is
aiocache's own code, unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiocache.backends.redis import RedisCache as AiocacheRedisCache
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.sentinel import Sentinel

from .._config import import_object
from .adapter import backend_of


class SentinelMaster(Redis):
    """The client of a Sentinel-watched master: closing it also closes its connections
    to the sentinels (redis-py leaves those open)."""

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        await super().aclose(close_connection_pool)
        manager = getattr(self.connection_pool, "sentinel_manager", None)
        for sentinel in getattr(manager, "sentinels", ()):
            await sentinel.aclose()

    close = aclose  # aiocache calls close()


def sentinel_master(
    sentinels: list[tuple[str, int]] | list[list[Any]],
    service_name: str,
    sentinel_kwargs: Mapping[str, Any] | None = None,
    **connection_kwargs: Any,
) -> Redis:
    """A client for the current master of ``service_name``, as Sentinel reports it
    (it follows a failover): ``Sentinel(sentinels, ...).master_for(service_name)``."""
    sentinel = Sentinel(  # type: ignore[no-untyped-call]
        [(str(host), int(port)) for host, port in sentinels],
        sentinel_kwargs=dict(sentinel_kwargs or {}),
        **connection_kwargs,
    )
    master: Redis = sentinel.master_for(service_name, redis_class=SentinelMaster)
    return master


def build_client(spec: Mapping[str, Any]) -> Any:
    """A redis-py client from a config dict: ``{"class": <dotted path of a client class
    or factory>, **its arguments}`` (default ``redis.asyncio.Redis``); with ``"url"``,
    the class's ``from_url``."""
    options = dict(spec)
    factory: Any = import_object(options.pop("class", "redis.asyncio.Redis"))
    url = options.pop("url", None)
    if url is not None:
        return factory.from_url(url, **options)
    return factory(**options)


class RedisCache(AiocacheRedisCache):  # type: ignore[misc]
    """aiocache's ``RedisCache``, over ``client``: a ``redis.asyncio.Redis`` (TLS, ACL
    user, unix socket: whatever redis-py takes), a ``redis.asyncio.RedisCluster``, or a
    Sentinel master client (``sentinel_master(...)``); or a config dict that builds one
    (``{"class": "redis.asyncio.RedisCluster", "host": ..., "port": ...}``). Without
    ``client`` it is aiocache's ``RedisCache`` exactly. A client passed in stays yours
    to close; one built here is closed with the cache. The client must not decode
    responses (aiocache stores bytes)."""

    def __init__(self, serializer: Any = None, client: Any = None, **kwargs: Any) -> None:
        super().__init__(serializer=serializer, **kwargs)
        self._owns_client = client is None or isinstance(client, Mapping)
        if client is not None:
            self.client = build_client(client) if isinstance(client, Mapping) else client
        self.cluster = isinstance(self.client, RedisCluster)

    def __repr__(self) -> str:
        if self.cluster:
            seeds = list(self.client.nodes_manager.startup_nodes)
            return f"RedisCache (cluster at {', '.join(seeds[:3])})"
        kwargs = getattr(getattr(self.client, "connection_pool", None), "connection_kwargs", {})
        where = kwargs.get("path") or f"{kwargs.get('host', '?')}:{kwargs.get('port', '?')}"
        return f"RedisCache ({where})"

    async def _multi_get(self, keys: Any, encoding: str | None = "utf-8", _conn: Any = None) -> Any:
        if not self.cluster:
            return await super()._multi_get(keys, encoding=encoding, _conn=_conn)
        values = await self.client.mget_nonatomic(*keys)  # one MGET per slot
        if encoding is None:
            return values
        return [v if v is None else v.decode(encoding) for v in values]

    async def _multi_set(self, pairs: Any, ttl: Any = None, _conn: Any = None) -> Any:
        if not self.cluster:
            return await super()._multi_set(pairs, ttl=ttl, _conn=_conn)
        pairs = list(pairs)
        if not ttl:
            await self.client.mset_nonatomic(dict(pairs))
            return True
        milliseconds = int(ttl * 1000)
        async with self.client.pipeline() as pipe:  # grouped per node, no transaction
            for key, value in pairs:
                pipe.set(key, value, px=milliseconds)
            await pipe.execute()
        return True

    async def _clear(self, namespace: str | None = None, _conn: Any = None) -> Any:
        """A namespace by ``SCAN`` + ``UNLINK`` on every primary (never ``KEYS``); the
        whole database with ``FLUSHDB`` (every primary of a cluster)."""
        if namespace:
            await backend_of(self).delete_prefix(self.build_key("", namespace=namespace))
        elif self.cluster:
            await self.client.flushdb(target_nodes=RedisCluster.PRIMARIES)
        else:
            await self.client.flushdb()
        return True

    async def _close(self, *args: Any, _conn: Any = None, **kwargs: Any) -> None:
        if self._owns_client:
            await super()._close(*args, _conn=_conn, **kwargs)
