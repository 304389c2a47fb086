"""Fixtures: real redis-server / memcached processes and the backend matrix.

``cache`` is parametrised over memory, Redis, memcached, Valkey and a Redis Cluster, so a
behaviour test written once runs on each. The servers are session-scoped and flushed
after each test; fault tests take a server of their own from ``redis_factory``/
``memcached_factory``.
"""

from __future__ import annotations

import atexit
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, TypeVar

import pytest
from aiocache import Cache, cached
from aiocache.base import BaseCache

from aiocache_ext import RedisCache, _log

from .helpers import same_server
from .servers import MemcachedServer, RedisCluster, RedisServer, Server, ValkeyServer

BACKENDS = [
    pytest.param("memory", id="memory"),
    pytest.param("redis", id="redis", marks=pytest.mark.redis),
    pytest.param("memcached", id="memcached", marks=pytest.mark.memcached),
    pytest.param("valkey", id="valkey", marks=[pytest.mark.redis, pytest.mark.topology]),
    pytest.param("cluster", id="cluster", marks=[pytest.mark.redis, pytest.mark.topology]),
]

_STARTED: list[Server] = []
ServerT = TypeVar("ServerT", bound=Server)


@atexit.register
def _stop_all() -> None:
    """Last resort (interrupted run): end every server this process started, by PID."""
    for server in _STARTED:
        server.kill()


@pytest.fixture(autouse=True)
def _fresh_log_once() -> None:
    """Each test sees its own first occurrence of a problem logged."""
    _log._seen.clear()


def _start(server: Server) -> Server:
    _STARTED.append(server)
    server.start()
    return server


def _served(server: ServerT) -> Iterator[ServerT]:
    """``server`` started for the session, stopped at its end."""
    _start(server)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    yield from _served(RedisServer())


@pytest.fixture(scope="session")
def valkey_server() -> Iterator[ValkeyServer]:
    yield from _served(ValkeyServer())


@pytest.fixture(scope="session")
def cluster_servers() -> Iterator[RedisCluster]:
    servers = RedisCluster()
    _STARTED.extend(servers.nodes)  # ended by PID at exit, also after an interrupted run
    try:
        servers.start()
        yield servers
    finally:
        servers.kill()


@pytest.fixture(scope="session")
def memcached_server() -> Iterator[MemcachedServer]:
    yield from _served(MemcachedServer())


def _factory(kind: type[ServerT]) -> Iterator[Callable[[], ServerT]]:
    """Fresh servers of ``kind`` for one test, killed at its end."""
    servers: list[ServerT] = []

    def make() -> ServerT:
        servers.append(kind())
        _start(servers[-1])
        return servers[-1]

    yield make
    for server in servers:
        server.kill()


@pytest.fixture
def redis_factory() -> Iterator[Callable[[], RedisServer]]:
    """Fresh redis-servers for tests that stop, kill or pause them."""
    yield from _factory(RedisServer)


@pytest.fixture
def valkey_factory() -> Iterator[Callable[[], ValkeyServer]]:
    """Fresh valkey-servers for tests that stop, kill or pause them."""
    yield from _factory(ValkeyServer)


@pytest.fixture
def memcached_factory() -> Iterator[Callable[[], MemcachedServer]]:
    """Fresh memcached servers for tests that stop, kill or pause them."""
    yield from _factory(MemcachedServer)


def make_cache(backend: str, request: pytest.FixtureRequest, **kwargs: Any) -> BaseCache:
    """An aiocache cache of ``backend`` on the session's servers."""
    if backend == "memory":
        return Cache(Cache.MEMORY, **kwargs)
    if backend in ("redis", "valkey"):
        server: Server = request.getfixturevalue(f"{backend}_server")
        return Cache(Cache.REDIS, endpoint=server.host, port=server.port, **kwargs)
    if backend == "cluster":
        servers: RedisCluster = request.getfixturevalue("cluster_servers")
        client = {"class": "redis.asyncio.RedisCluster", "host": servers.host,
                  "port": servers.port}  # fmt: skip
        return RedisCache(client=client, **kwargs)  # owns the client: closes it
    if backend == "memcached":
        server = request.getfixturevalue("memcached_server")
        return Cache(Cache.MEMCACHED, endpoint=server.host, port=server.port, **kwargs)
    raise ValueError(backend)


def cache_config(backend: str, request: pytest.FixtureRequest) -> dict[str, Any]:
    """The aiocache config dict (``caches.set_config``) of a cache of ``backend``."""
    if backend == "memory":
        return {"cache": "aiocache.SimpleMemoryCache"}
    if backend == "cluster":
        servers: RedisCluster = request.getfixturevalue("cluster_servers")
        client = {"class": "redis.asyncio.RedisCluster", "host": servers.host,
                  "port": servers.port}  # fmt: skip
        return {"cache": "aiocache_ext.RedisCache", "client": client}
    server: Server = request.getfixturevalue(f"{backend}_server")
    kind = "aiocache.MemcachedCache" if backend == "memcached" else "aiocache.RedisCache"
    return {"cache": kind, "endpoint": server.host, "port": server.port}


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    """The backend name; the servers it uses are flushed after the test."""
    name: str = request.param
    servers: list[Server] = []  # looked up before the test: pytest refuses it in teardown
    if name in ("redis", "valkey", "memcached"):
        servers = [request.getfixturevalue(f"{name}_server")]
    elif name == "cluster":  # every node: replicas refuse, primaries flush
        servers = list(request.getfixturevalue("cluster_servers").nodes)
    yield name
    for server in servers:
        server.flush()


@pytest.fixture
async def cache_factory(
    backend: str, request: pytest.FixtureRequest
) -> AsyncIterator[Callable[..., BaseCache]]:
    """Build caches of the test's backend with any aiocache options; closed afterwards."""
    made: list[BaseCache] = []

    def factory(**kwargs: Any) -> BaseCache:
        made.append(make_cache(backend, request, **kwargs))
        return made[-1]

    yield factory
    for cache in made:
        await cache.close()


@pytest.fixture
async def cached_here(cache: BaseCache) -> AsyncIterator[Callable[..., cached]]:
    """``cached(...)`` with the test's backend and server filled in; closed afterwards."""
    made: list[cached] = []

    def factory(decorator: type[cached] = cached, **kwargs: Any) -> cached:
        made.append(decorator(cache=type(cache), **same_server(cache), **kwargs))
        return made[-1]

    yield factory
    for decorator in made:
        if decorator.cache is not None:
            await decorator.cache.close()


@pytest.fixture
def cache(cache_factory: Callable[..., BaseCache]) -> BaseCache:
    """A ready cache of the test's backend, namespace ``test``."""
    return cache_factory(namespace="test")
