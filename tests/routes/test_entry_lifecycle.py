"""An entry's life (SPEC §10): ttl forms, readable when done, namespaces, flights that end
with their request, on memory, Redis and memcached."""

from __future__ import annotations

import asyncio
import datetime
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiocache import Cache
from aiocache.base import BaseCache
from aiocache.plugins import BasePlugin
from aiocache.serializers import JsonSerializer
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from aiocache_ext import invalidate, key_builder, stream_cached
from aiocache_ext.streaming import store as store_module
from aiocache_ext.streaming import writer as writer_module
from aiocache_ext.streaming.format import Manifest
from aiocache_ext.streaming.store import SegmentStore

from ..conftest import make_cache
from ..helpers import client_for, served
from ..servers import RedisServer

KEY = "entry"


def counted(cache: BaseCache, **options: Any) -> tuple[Starlette, list[int]]:
    """A route at ``/`` answering ``call <n>``; the list holds the call count."""
    calls = [0]
    options.setdefault("key", KEY)
    options.setdefault("key_host", False)

    @stream_cached(cache=cache, **options)
    async def route(request: Request) -> Response:
        calls[0] += 1
        return PlainTextResponse(f"call {calls[0]}")

    return Starlette(routes=[Route("/", route)]), calls


async def test_ttl_of_one_second_caches(cache: BaseCache) -> None:
    app, calls = counted(cache, ttl=1)
    async with client_for(app) as client:
        miss, hit = await client.get("/"), await client.get("/")
    assert (miss.headers["x-cache"], hit.headers["x-cache"]) == ("MISS", "HIT")
    assert calls == [1]


@pytest.mark.parametrize(
    ("ttl", "seconds"),
    [("5m", 300), (datetime.timedelta(hours=1), 3600), ("1h30m", 5400), (2.5, 2.5)],
)
async def test_ttl_forms_are_honoured(cache: BaseCache, ttl: Any, seconds: float) -> None:
    app, _ = counted(cache, ttl=ttl)
    async with client_for(app) as client:
        await client.get("/")
        hit = await client.get("/")
    assert hit.headers["x-cache"] == "HIT"
    manifest = await SegmentStore(cache).get_entry(KEY)
    assert isinstance(manifest, Manifest) and manifest.expires_at is not None
    assert manifest.expires_at - manifest.stored_at == seconds


@pytest.mark.parametrize("ttl", ["5 minutes", "0s", -1, True, object()])
def test_a_bad_ttl_fails_at_decoration(ttl: Any) -> None:
    with pytest.raises((TypeError, ValueError), match="ttl"):
        stream_cached(ttl=ttl)


@pytest.mark.redis
async def test_fractional_ttl_on_redis_and_segments_outlive_the_entry(
    redis_server: RedisServer,
) -> None:
    cache = Cache(Cache.REDIS, endpoint=redis_server.host, port=redis_server.port, namespace="t")
    try:

        @stream_cached(cache=cache, ttl=0.5, key="fractional", key_host=False, segment_size=4)
        async def route(request: Request) -> Response:
            return StreamingResponse(iter([b"0123", b"4567", b"89"]))

        async with client_for(Starlette(routes=[Route("/", route)])) as client:
            await client.get("/")
            store = SegmentStore(cache)
            manifest = await store.get_entry("fractional")
            assert isinstance(manifest, Manifest)
            entry_ms = await cache.client.pttl(store.key("fractional"))
            segment_ms = [
                await cache.client.pttl(store.key(manifest.segment_key("fractional", i)))
                for i in range(manifest.segments)
            ]
        assert 0 < entry_ms <= 500
        assert all(ms > entry_ms for ms in segment_ms)
    finally:
        await cache.clear()
        await cache.close()


async def test_a_cache_instance_takes_the_decorators_namespace(
    backend: str, request: pytest.FixtureRequest
) -> None:
    bare = make_cache(backend, request)  # no namespace of its own
    try:
        calls = [0]

        @stream_cached(cache=bare, namespace="reports", ttl=60, key=KEY, key_host=False)
        async def route(request: Request) -> Response:
            calls[0] += 1
            return PlainTextResponse(f"call {calls[0]}")

        async with client_for(Starlette(routes=[Route("/", route)])) as client:
            await client.get("/")
            assert await bare.get(KEY, namespace="reports", loads_fn=lambda v: v) is not None
            assert await bare.get(KEY, loads_fn=lambda v: v) is None
            assert (await client.get("/")).headers["x-cache"] == "HIT"
            await invalidate(namespace="reports", cache=route)
            after = await client.get("/")
        assert (after.headers["x-cache"], after.text) == ("MISS", "call 2")
    finally:
        await bare.close()


async def test_a_value_the_serializer_cannot_encode_is_one_log_line(
    backend: str, request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture
) -> None:
    cache = make_cache(backend, request, namespace="j", serializer=JsonSerializer())
    try:
        app = FastAPI()

        @app.get("/when")
        @stream_cached(cache=cache, ttl=60)
        async def when(request: Request) -> dict[str, object]:
            return {"at": datetime.datetime(2026, 1, 1)}

        caplog.set_level(logging.INFO)
        async with client_for(app) as client:
            answers = [await client.get("/when") for _ in range(3)]
        assert all(a.status_code == 200 for a in answers)
        lines = [r for r in caplog.records if "not cached" in r.getMessage()]
        assert len(lines) == 1
        assert not [r for r in caplog.records if r.exc_info]  # no traceback per request
    finally:
        await cache.close()


async def test_requests_for_an_unstorable_response_are_released_at_its_start(
    cache: BaseCache,
) -> None:
    release = asyncio.Event()
    calls = [0]

    @stream_cached(cache=cache, ttl=60, key=KEY, key_host=False)
    async def missing(request: Request) -> Response:
        calls[0] += 1

        async def body() -> AsyncIterator[bytes]:
            yield b"not "
            await release.wait()
            yield b"found"

        return StreamingResponse(body(), status_code=404)

    async with served(Starlette(routes=[Route("/", missing)])) as client:
        first = asyncio.ensure_future(client.get("/"))
        second = asyncio.ensure_future(client.get("/"))
        try:
            for _ in range(500):  # bounded: both requests reach the endpoint
                if calls[0] == 2:
                    break
                await asyncio.sleep(0.01)
            assert calls[0] == 2, "the second request waited for the first one's whole body"
        finally:
            release.set()
        answers = [await first, await second]
    assert [a.content for a in answers] == [b"not found"] * 2


async def test_a_response_never_sent_does_not_hold_other_requests(cache: BaseCache) -> None:
    calls = [0]

    @stream_cached(cache=cache, ttl=60, key=KEY, key_host=False)  # lock_timeout: 30 s
    async def page(request: Request) -> Response:
        calls[0] += 1
        return PlainTextResponse("page")

    async def teardown_fails(request: Request) -> Response:
        response = await page(request)
        if calls[0] == 1:
            raise RuntimeError("a dependency's teardown raised")  # the response is dropped
        return response

    app = Starlette(routes=[Route("/", teardown_fails)])
    async with served(app) as client:
        failed = await client.get("/")
        later = await asyncio.wait_for(client.get("/"), 10)
    assert failed.status_code == 500
    assert (later.status_code, later.text, calls[0]) == (200, "page", 2)


@pytest.mark.parametrize("pairs", [20])
async def test_the_next_request_after_a_miss_is_a_hit(cache: BaseCache, pairs: int) -> None:
    """Read your writes through a real uvicorn: the entry is stored before the client
    gets its last byte."""

    @stream_cached(cache=cache, ttl=60)
    async def report(request: Request, year: int) -> Response:
        async def rows() -> AsyncIterator[bytes]:
            for month in range(12):
                await asyncio.sleep(0)
                yield f"{year},{month}\n".encode()

        return StreamingResponse(rows())

    app = FastAPI()
    app.add_api_route("/report", report)
    async with served(app) as client:
        for year in range(pairs):
            miss = await client.get("/report", params={"year": year})
            hit = await client.get("/report", params={"year": year})
            assert (miss.headers["x-cache"], hit.headers["x-cache"]) == ("MISS", "HIT")
            assert hit.content == miss.content


def test_cache_class_keeps_aiocache_semantics() -> None:
    decorator = stream_cached(cache=Cache.MEMORY, namespace="n", ttl="1m")
    assert decorator.ttl == 60


@pytest.mark.redis
async def test_a_replaced_write_frees_its_segments(redis_server: RedisServer) -> None:
    cache = Cache(Cache.REDIS, endpoint=redis_server.host, port=redis_server.port, namespace="r")
    try:
        calls = [0]

        @stream_cached(
            cache=cache, ttl=None, key="replaced", key_host=False, segment_size=4,
            honor_request_cache_control=True,
        )  # fmt: skip
        async def route(request: Request) -> Response:
            calls[0] += 1
            return StreamingResponse(iter([b"0123", b"4567", str(calls[0]).encode()]))

        store = SegmentStore(cache)
        async with client_for(Starlette(routes=[Route("/", route)])) as client:
            await client.get("/")
            first = await store.get_entry("replaced")
            await client.get("/", headers={"Cache-Control": "no-cache"})  # written anew
            second = await store.get_entry("replaced")
        assert isinstance(first, Manifest) and isinstance(second, Manifest)
        assert first.write_id != second.write_id
        old = [store.key(first.segment_key("replaced", i)) for i in range(first.segments)]
        new = [store.key(second.segment_key("replaced", i)) for i in range(second.segments)]
        old_ttls = [await cache.client.ttl(k) for k in old]
        assert all(0 < t <= 60 for t in old_ttls), old_ttls  # going, not gone at once
        assert [await cache.client.ttl(k) for k in new] == [-1] * len(new)  # no ttl: kept
    finally:
        await cache.clear()
        await cache.close()


@pytest.mark.redis
async def test_a_long_stream_has_its_first_segments_extended_at_commit(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer_module, "SEGMENT_GRACE", 2.0)  # "long" is then over 1 s
    monkeypatch.setattr(store_module, "SEGMENT_GRACE", 2.0)
    cache = Cache(Cache.REDIS, endpoint=redis_server.host, port=redis_server.port, namespace="l")
    try:

        @stream_cached(cache=cache, ttl=5, key="long", key_host=False, segment_size=4)
        async def route(request: Request) -> Response:
            async def body() -> AsyncIterator[bytes]:
                yield b"0123"
                await asyncio.sleep(1.2)  # the stream is slow; nothing is asserted on time
                yield b"4567"

            return StreamingResponse(body())

        store = SegmentStore(cache)
        async with client_for(Starlette(routes=[Route("/", route)])) as client:
            await client.get("/")
        manifest = await store.get_entry("long")
        assert isinstance(manifest, Manifest)
        first_ms = await cache.client.pttl(store.key(manifest.segment_key("long", 0)))
        # Written with 5 + 2 s at least 1.2 s before the commit (at most 5.8 s left then);
        # renewed to 7 s at the commit.
        assert first_ms > 6000
    finally:
        await cache.clear()
        await cache.close()


async def test_the_aiocache_way_finds_a_plain_calls_entry(cache: BaseCache) -> None:
    """``get_cache_key`` with the decorated function gives the key a plain call stored its
    value under, so checking, deleting or pre-warming one entry works as in aiocache."""
    decorator = stream_cached(cache=cache, ttl=60, key_builder=key_builder)

    async def total(year: int, request: Any = None) -> int:
        return year * 2

    decorated = decorator(total)
    assert await decorated(2024) == 4048
    key = decorator.get_cache_key(decorated, (2024,), {})
    assert await decorator.get_from_cache(key) == 4048


class SlowWrites(BasePlugin):  # type: ignore[misc]
    """An aiocache plugin that makes every write take a while, as a busy backend does."""

    async def pre_set(self, *args: Any, **kwargs: Any) -> None:
        await asyncio.sleep(0.3)  # setup: nothing is asserted on time


async def test_the_client_gets_its_last_byte_only_once_the_entry_is_stored(
    backend: str, request: pytest.FixtureRequest
) -> None:
    """With slow writes, a request sent right after a miss's last byte still hits."""
    cache = make_cache(backend, request, namespace="slow", plugins=[SlowWrites()])
    try:

        @stream_cached(cache=cache, ttl=60, key_builder=key_builder)
        async def report(request: Request, year: int) -> Response:
            return StreamingResponse(iter([f"{year},{month}\n".encode() for month in range(12)]))

        app = FastAPI()
        app.add_api_route("/report", report, methods=["GET", "HEAD"])
        async with served(app) as client:
            miss = await client.get("/report", params={"year": 2024})
            # Another connection, as another client or a load balancer would use, and a
            # HEAD: it does not wait on this process's flight, as a request to another
            # worker would not.
            async with httpx.AsyncClient(base_url=client.base_url) as other:
                head = await other.head("/report", params={"year": 2024})
                hit = await other.get("/report", params={"year": 2024})
        assert (miss.headers["x-cache"], head.headers["x-cache"]) == ("MISS", "HIT")
        assert hit.content == miss.content
    finally:
        await cache.close()
