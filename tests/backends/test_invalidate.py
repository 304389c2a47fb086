"""invalidate(namespace=...) on memory, Redis and memcached, streamed entries included."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import redis
from aiocache.base import BaseCache
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from aiocache_ext import FallbackCache, State, invalidate, key_builder, stream_cached

from ..helpers import client_for, state_of
from ..servers import RedisServer


def app_on(cache_a: BaseCache, cache_b: BaseCache, calls: list[str]) -> FastAPI:
    """``/a/stream`` and ``/a/value`` in namespace A, ``/b/value`` in namespace B."""
    app = FastAPI()

    @app.get("/a/stream")
    @stream_cached(cache=cache_a, ttl=60, key_builder=key_builder, segment_size=8)
    async def stream() -> Response:
        calls.append("a-stream")
        return StreamingResponse(iter([b"streamed ", b"body ", b"over segments"]))

    @app.get("/a/value")
    @stream_cached(cache=cache_a, ttl=60, key_builder=key_builder)
    async def value_a() -> dict[str, int]:
        calls.append("a-value")
        return {"a": 1}

    @app.get("/b/value")
    @stream_cached(cache=cache_b, ttl=60, key_builder=key_builder)
    async def value_b() -> dict[str, int]:
        calls.append("b-value")
        return {"b": 2}

    @app.post("/a/write")
    @invalidate(namespace="ns-a", cache=cache_a)
    async def write(fail: bool = False) -> dict[str, bool]:
        if fail:
            raise RuntimeError("write failed")
        return {"written": True}

    return app


async def test_invalidate_drops_a_namespace_streamed_entries_included(
    cache_factory: Callable[..., BaseCache], backend: str
) -> None:
    cache_a, cache_b = cache_factory(namespace="ns-a"), cache_factory(namespace="ns-b")
    if backend == "memory":  # one in-process store that both namespaces share, as a server
        cache_b._cache = cache_a._cache
    calls: list[str] = []
    app = app_on(cache_a, cache_b, calls)
    paths = ["/a/stream", "/a/value", "/b/value"]
    async with client_for(app) as client:
        for _ in range(2):
            assert [(await client.get(p)).status_code for p in paths] == [200] * 3
        assert calls == ["a-stream", "a-value", "b-value"]

        dropped = await invalidate(namespace="ns-a", cache=cache_a)
        assert dropped != 0
        bodies = [(await client.get(p)).content for p in paths]
    assert bodies[0] == b"streamed body over segments"
    # memcached cannot list keys and is not flushed: the namespace token makes the
    # streamed entry a miss; a plain value stays until its ttl; namespace B is untouched.
    expected_plain = [] if backend == "memcached" else ["a-value"]
    assert calls[3:] == ["a-stream", *expected_plain]


async def test_decorator_invalidates_after_a_successful_write_only(
    cache_factory: Callable[..., BaseCache],
) -> None:
    cache_a = cache_factory(namespace="ns-a")
    calls: list[str] = []
    app = app_on(cache_a, cache_factory(namespace="ns-b"), calls)
    async with client_for(app) as client:
        await client.get("/a/stream")
        with pytest.raises(RuntimeError):
            await client.post("/a/write", params={"fail": True})
        assert (await client.get("/a/stream")).headers["x-cache"] == "HIT"
        assert (await client.post("/a/write")).json() == {"written": True}
        assert (await client.get("/a/stream")).headers["x-cache"] == "MISS"


@pytest.mark.redis
async def test_redis_invalidation_never_uses_keys_or_flush(
    redis_server: RedisServer, request: pytest.FixtureRequest
) -> None:
    from ..conftest import make_cache

    cache = make_cache("redis", request, namespace="big")
    other = make_cache("redis", request, namespace="other")
    client = redis.Redis(host=redis_server.host, port=redis_server.port)
    try:
        await cache.multi_set([(f"k{i}", i) for i in range(3000)])
        await other.set("keep", 1)
        client.config_resetstat()
        assert await invalidate(namespace="big", cache=cache) == 3000
        stats = client.info("commandstats")
        assert await other.get("keep") == 1
        assert client.dbsize() == 2  # "keep", and the namespace's new token
    finally:
        client.flushall()
        client.close()
        await cache.close()
        await other.close()
    used = {name.removeprefix("cmdstat_") for name in stats}
    assert not used & {"keys", "flushdb", "flushall"}, used
    assert {"scan", "unlink"} <= used


async def test_invalidate_through_a_fallback_cache(redis_server: RedisServer) -> None:
    from aiocache import Cache

    primary = Cache(Cache.REDIS, endpoint=redis_server.host, port=redis_server.port)
    cache = FallbackCache(primary=primary, namespace="fb")
    other = FallbackCache(
        primary=Cache(Cache.REDIS, endpoint=redis_server.host, port=redis_server.port),
        namespace="fb2",
    )
    try:
        await cache.set("x", 1)
        await other.set("x", 2)
        await invalidate(namespace="fb", cache=cache)
        assert await cache.get("x") is None
        assert await other.get("x") == 2
    finally:
        await cache.close()
        await other.close()


def test_invalidate_needs_a_namespace_and_a_cache() -> None:
    with pytest.raises(ValueError, match="needs a namespace"):
        invalidate(namespace="")
    with pytest.raises(TypeError, match="not a cache"):
        invalidate(namespace="x", cache=object()).cache  # noqa: B018


async def test_invalidate_never_touches_other_namespaces_or_applications(
    cache_factory: Callable[..., BaseCache], backend: str
) -> None:
    cache_a, cache_b = cache_factory(namespace="ns-a"), cache_factory(namespace="ns-b")
    foreign = cache_factory()  # another application on the same server, no namespace
    if backend == "memory":
        cache_b._cache = foreign._cache = cache_a._cache
    await cache_b.set("kept", 1)
    await foreign.set("their-key", "theirs")
    await invalidate(namespace="ns-a", cache=cache_a)
    assert await cache_b.get("kept") == 1
    assert await foreign.get("their-key") == "theirs"


async def test_a_write_begun_before_an_invalidation_never_shows_after_it(
    cache: BaseCache,
) -> None:
    release = asyncio.Event()
    calls = [0]

    @stream_cached(cache=cache, ttl=60, key="report", key_host=False)
    async def report(request: Request) -> Response:
        calls[0] += 1
        version = calls[0]

        async def rows() -> AsyncIterator[bytes]:
            yield f"data v{version}, ".encode()
            if version == 1:
                await release.wait()  # a long report of the old data
            yield b"end"

        return StreamingResponse(rows())

    app = Starlette(routes=[Route("/", report)])
    async with client_for(app) as client:
        old = asyncio.ensure_future(client.get("/"))
        for _ in range(500):  # bounded: the old report has started
            if calls[0]:
                break
            await asyncio.sleep(0.01)
        await invalidate(namespace="test", cache=cache)  # the data changed meanwhile
        release.set()
        assert (await old).content == b"data v1, end"
        after = await client.get("/")
    assert (after.headers["x-cache"], after.content) == ("MISS", b"data v2, end")


async def replay_interrupted(app: Any, path: str, midway: Callable[[], Awaitable[Any]]) -> bytes:
    """The body of GET ``path``, with ``midway()`` run once the first part is sent (the
    client is slow: the rest is read from the cache afterwards)."""
    scope = {"type": "http", "method": "GET", "path": path, "raw_path": path.encode(),
             "query_string": b"", "headers": [(b"host", b"test")], "scheme": "http",
             "http_version": "1.1", "root_path": "", "client": ("c", 1),
             "server": ("t", 80)}  # fmt: skip
    body: list[bytes] = []
    requested = asyncio.Event()

    async def receive() -> dict[str, Any]:
        if requested.is_set():
            await asyncio.Event().wait()  # the client stays: cancelled when the app ends
        requested.set()
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            body.append(message.get("body", b""))
            if len(body) == 1:
                await midway()

    await app(scope, receive, send)
    return b"".join(body)


LONG = bytes(range(256)) * 256  # 64 segments of 1 KiB: batches beyond the read-ahead


def long_app(cache: BaseCache, calls: list[int]) -> Starlette:
    @stream_cached(cache=cache, ttl=60, key="long", segment_size=1024)
    async def route(request: Request) -> StreamingResponse:
        calls.append(1)
        return StreamingResponse(iter([LONG[i : i + 5000] for i in range(0, len(LONG), 5000)]))

    return Starlette(routes=[Route("/", route)])


async def test_an_invalidation_during_a_replay_leaves_it_whole(cache: BaseCache) -> None:
    calls: list[int] = []
    app = long_app(cache, calls)
    async with client_for(app) as client:
        assert (await client.get("/")).content == LONG
        assert (await client.get("/")).headers["x-cache"] == "HIT"
    replayed = await replay_interrupted(app, "/", lambda: invalidate(namespace="test", cache=cache))
    assert replayed == LONG
    assert calls == [1]
    async with client_for(app) as client:
        after = await client.get("/")
    assert (after.content, after.headers["x-cache"]) == (LONG, "MISS")  # it took


@pytest.mark.redis
async def test_a_fallback_switch_during_a_replay_leaves_it_whole(
    redis_factory: Callable[[], RedisServer],
) -> None:
    """A replay that began on Redis goes on while the breaker opens (the segments are
    still there), and one that began on the fallback goes on after the recovery empties
    it: each reads its segments wherever they are."""
    from aiocache import Cache

    server = redis_factory()
    primary = Cache(Cache.REDIS, endpoint=server.host, port=server.port)
    closed = asyncio.Event()
    cache = FallbackCache(
        primary=primary, namespace="fb", probe_min=2.0, probe_max=2.0, recovery_hold=0,
        on_state_change=lambda old, new, error: closed.set() if new is State.CLOSED else None,
    )  # fmt: skip
    calls: list[int] = []
    app = long_app(cache, calls)
    try:
        async with client_for(app) as client:
            assert (await client.get("/")).content == LONG

        async def breaker_opens() -> None:
            cache._recovery.trip(ConnectionError("switch"))  # as a failed call would

        assert await replay_interrupted(app, "/", breaker_opens) == LONG
        assert cache.state is not State.CLOSED
        async with client_for(app) as client:  # stored in the fallback meanwhile
            assert (await client.get("/")).content == LONG

        assert await replay_interrupted(app, "/", closed.wait) == LONG
        assert state_of(cache) is State.CLOSED
        assert calls == [1, 1]
    finally:
        await cache.close()
