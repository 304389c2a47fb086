"""``aiocache_ext.RedisCache`` over redis-py clients as users build them: a unix socket,
an ACL user limited to the application's key prefix (every key we touch must match it:
the server refuses any other), and the config-dict form."""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator, Iterator

import pytest
import redis
from aiocache import caches
from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

from aiocache_ext import RedisCache, invalidate, stream_cached

from ..helpers import client_for
from ..servers import RedisServer, TlsRedisServer

pytestmark = pytest.mark.redis

BODY = bytes(range(256)) * 400  # 100 KiB: several segments


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    """A redis-server on a port and a unix socket, with an ACL user ``app`` that may
    touch only keys starting with ``app:``."""
    socket_dir = tempfile.mkdtemp(prefix="aiocache-ext-sock-")
    started = RedisServer(options=["--unixsocket", os.path.join(socket_dir, "redis.sock"),
                                   "--unixsocketperm", "700"])  # fmt: skip
    try:  # a server that fails to start is ended too (no process or pipe left behind)
        started.start()
        admin = redis.Redis(host=started.host, port=started.port)
        admin.acl_setuser(
            "app", enabled=True, passwords=["+app-secret"], keys=["app:*"],
            commands=["+@all", "-@dangerous"],
        )  # fmt: skip
        admin.close()
        yield started
    finally:
        started.kill()


def socket_path(server: RedisServer) -> str:
    return str(server.options[1])


def app(cache: RedisCache, calls: list[int]) -> Starlette:
    @stream_cached(cache=cache, ttl=60, key="report", key_host=False, segment_size=16 * 1024)
    async def route(request: Request) -> StreamingResponse:
        calls.append(1)

        async def body() -> AsyncIterator[bytes]:
            yield BODY

        return StreamingResponse(body())

    return Starlette(routes=[Route("/", route)])


async def hit_after_miss(cache: RedisCache) -> list[int]:
    calls: list[int] = []
    async with client_for(app(cache, calls)) as client:
        miss, hit = await client.get("/"), await client.get("/")
        assert (miss.headers["x-cache"], hit.headers["x-cache"]) == ("MISS", "HIT")
        assert miss.content == hit.content == BODY
        assert await invalidate(namespace="app", cache=cache) > 0
        assert (await client.get("/")).headers["x-cache"] == "MISS"
    return calls


async def test_a_unix_socket_client(server: RedisServer) -> None:
    client = Redis(unix_socket_path=socket_path(server))
    try:
        assert await hit_after_miss(RedisCache(client=client, namespace="app")) == [1, 1]
        assert "redis.sock" in repr(RedisCache(client=client))
    finally:
        await client.flushall()
        await client.aclose()


async def test_an_acl_user_limited_to_the_apps_prefix(server: RedisServer) -> None:
    client = Redis(host=server.host, port=server.port, username="app", password="app-secret")
    try:
        with pytest.raises(redis.exceptions.NoPermissionError):
            await client.set("elsewhere", 1)  # the limit is real
        assert await hit_after_miss(RedisCache(client=client, namespace="app")) == [1, 1]
    finally:
        await client.aclose()


async def test_a_client_passed_in_stays_open_and_one_from_a_dict_is_closed(
    server: RedisServer,
) -> None:
    client = Redis(host=server.host, port=server.port)
    cache = RedisCache(client=client, namespace="app")
    await cache.set("k", 1)
    await cache.close()
    assert await client.ping()  # still the user's to use, and to close
    await client.aclose()
    caches.set_config({
        "default": {"cache": "aiocache.SimpleMemoryCache"},
        "acl": {"cache": "aiocache_ext.RedisCache", "namespace": "app",
                "client": {"url": f"redis://app:app-secret@{server.host}:{server.port}/0"}},
    })  # fmt: skip
    try:
        built = caches.get("acl")
        assert await built.get("k") == 1
        await built.close()
    finally:
        caches._caches = {}
        caches.set_config({"default": {"cache": "aiocache.SimpleMemoryCache"}})


@pytest.fixture(scope="module")
def tls_server() -> Iterator[TlsRedisServer]:
    started = TlsRedisServer()
    try:  # a server that fails to start is ended too (no process or pipe left behind)
        started.start()
        yield started
    finally:
        started.kill()


async def test_tls_with_an_acl_user(tls_server: TlsRedisServer) -> None:
    admin = Redis(host=tls_server.host, port=tls_server.port, ssl=True,
                  ssl_ca_certs=tls_server.ca)  # fmt: skip
    await admin.acl_setuser(
        "app", enabled=True, passwords=["+app-secret"], keys=["app:*"],
        commands=["+@all", "-@dangerous"],
    )  # fmt: skip
    untrusted = Redis(host=tls_server.host, port=tls_server.port, ssl=True)
    with pytest.raises(redis.exceptions.ConnectionError):
        await untrusted.ping()  # the server's certificate is checked, so TLS is real
    client = Redis(host=tls_server.host, port=tls_server.port, ssl=True,
                   ssl_ca_certs=tls_server.ca, username="app", password="app-secret")  # fmt: skip
    try:
        assert await hit_after_miss(RedisCache(client=client, namespace="app")) == [1, 1]
    finally:
        for opened in (admin, untrusted, client):
            await opened.aclose()
