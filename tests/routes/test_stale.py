"""Stale entries (RFC 5861): past its ttl, an entry within ``stale_while_revalidate`` is
served at once, marked ``STALE`` with its true ``Age``, while one request refreshes it;
within ``stale_if_error`` it is served when the endpoint raises or answers 5xx. The same
from the endpoint's own ``Cache-Control``, and for plain values."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, MutableMapping
from typing import Any

import httpx
import pytest
from aiocache import Cache
from aiocache.base import BaseCache
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from aiocache_ext import FallbackCache, State, stream_cached

from ..helpers import client_for
from ..servers import RedisServer

TTL = 0.5  # short: every test waits for it to pass


def body(version: int) -> bytes:
    """A streamed body of several segments that differs in every byte per version."""
    return bytes([version % 256]) * 20_000


class Origin:
    """The endpoint's data: ``version`` goes up on every call; ``failing`` makes it raise
    (``"raise"``) or answer 503 (``"503"``); ``gate`` holds calls while it is clear."""

    def __init__(self) -> None:
        self.version = 0
        self.failing: str | None = None
        self.gate = asyncio.Event()
        self.gate.set()
        self.entered = asyncio.Event()

    def app(
        self,
        cache: BaseCache,
        headers: dict[str, str] | None = None,
        ttl: float = TTL,
        **options: Any,
    ) -> Starlette:
        @stream_cached(cache=cache, ttl=ttl, key="report", segment_size=4096, **options)
        async def report(request: Request) -> Response:
            self.version += 1
            self.entered.set()
            await self.gate.wait()
            if self.failing == "raise":
                raise RuntimeError("origin down")
            if self.failing == "503":
                return Response(b"unavailable", status_code=503)
            data = body(self.version)

            async def chunks() -> AsyncIterator[bytes]:
                for start in range(0, len(data), 5000):
                    yield data[start : start + 5000]

            return StreamingResponse(chunks(), headers=headers)

        return Starlette(routes=[Route("/", report)])


async def past_freshness(stored_at: float, seconds: float = TTL) -> None:
    """Wait until an entry stored at ``stored_at`` (``time.time()``) is ``seconds`` old."""
    await asyncio.sleep(max(0.0, stored_at + seconds - time.time()) + 0.02)


def marker(response: httpx.Response) -> str:
    return response.headers["x-cache"]


async def test_stale_while_revalidate_serves_at_once_and_refreshes_once(
    cache_factory: Callable[..., BaseCache],
) -> None:
    origin = Origin()
    app = origin.app(cache_factory(namespace="swr"), ttl=1, stale_while_revalidate=60)
    async with client_for(app) as http:
        first = await http.get("/")
        stored_at = time.time()
        assert (marker(first), first.content) == ("MISS", body(1))
        assert marker(await http.get("/")) == "HIT"
        await past_freshness(stored_at, 1)

        origin.gate.clear()  # the refresh is slow: every request below arrives meanwhile
        origin.entered.clear()
        refresher = asyncio.ensure_future(http.get("/"))
        await asyncio.wait_for(origin.entered.wait(), 30)
        during = await asyncio.gather(*(http.get("/") for _ in range(20)))
        assert {(r.status_code, marker(r), r.content) for r in during} == {(200, "STALE", body(1))}
        assert all(int(r.headers["age"]) >= 1 for r in during)  # the true age
        assert origin.version == 2  # one refresh, not one per request
        origin.gate.set()
        stale = await refresher
        assert (marker(stale), stale.content) == ("STALE", body(1))  # it did not wait either

        fresh = await http.get("/")
        assert (marker(fresh), fresh.content, fresh.headers["age"]) == ("HIT", body(2), "0")
        assert origin.version == 2


@pytest.mark.parametrize("failing", ["raise", "503"])
async def test_stale_if_error_serves_the_entry_inside_the_window_and_the_error_after(
    cache_factory: Callable[..., BaseCache], failing: str
) -> None:
    origin = Origin()
    window = 1.5
    app = origin.app(cache_factory(namespace="sie"), stale_if_error=window)
    async with client_for(app) as http:
        assert (await http.get("/")).content == body(1)
        stored_at = time.time()
        await past_freshness(stored_at)
        origin.failing = failing
        stale = await http.get("/")
        assert (stale.status_code, marker(stale), stale.content) == (200, "STALE", body(1))
        assert origin.version == 2  # the endpoint was tried first

        await past_freshness(stored_at, TTL + window)
        if failing == "raise":
            with pytest.raises(RuntimeError, match="origin down"):
                await http.get("/")
        else:
            after = await http.get("/")
            assert (after.status_code, after.content) == (503, b"unavailable")

        origin.failing = None  # the origin is back: a miss stores its answer
        back = await http.get("/")
        assert (back.status_code, marker(back), back.content) == (200, "MISS", body(4))


async def test_a_refresh_that_fails_keeps_the_stale_entry(
    cache_factory: Callable[..., BaseCache],
) -> None:
    origin = Origin()
    app = origin.app(cache_factory(namespace="swr-fail"), stale_while_revalidate=60)
    async with client_for(app) as http:
        await http.get("/")
        await past_freshness(time.time())
        origin.failing = "raise"
        for expected_calls in (2, 3):  # each stale hit tries again, none fails the client
            stale = await http.get("/")
            assert (stale.status_code, marker(stale), stale.content) == (200, "STALE", body(1))
            assert origin.version == expected_calls
        origin.failing = None
        assert (await http.get("/")).content == body(1)  # this one refreshed it
        assert origin.version == 4
        assert (await http.get("/")).content == body(4)


async def test_the_endpoints_own_cache_control_sets_the_windows(
    cache_factory: Callable[..., BaseCache],
) -> None:
    origin = Origin()
    # A short ttl from the decorator; the endpoint asks for a stale window itself.
    said = {"cache-control": "max-age=60, stale-while-revalidate=30"}
    async with client_for(origin.app(cache_factory(namespace="own"), headers=said)) as http:
        await http.get("/")
        await past_freshness(time.time())
        stale = await http.get("/")
        assert (marker(stale), stale.content) == ("STALE", body(1))
        assert (await http.get("/")).content == body(2)

    origin = Origin()  # must-revalidate: never served stale, whatever the options say
    said = {"cache-control": "max-age=60, must-revalidate"}
    app = origin.app(cache_factory(namespace="must"), headers=said, stale_while_revalidate=60,
                     stale_if_error=60)  # fmt: skip
    async with client_for(app) as http:
        await http.get("/")
        await past_freshness(time.time())
        origin.failing = "503"
        assert (await http.get("/")).status_code == 503


async def test_a_conditional_request_on_a_stale_entry_gets_304_and_refreshes_it(
    cache_factory: Callable[..., BaseCache],
) -> None:
    origin = Origin()
    app = origin.app(cache_factory(namespace="swr-304"), ttl=1, stale_while_revalidate=60)
    async with client_for(app) as http:
        await http.get("/")
        stored_at = time.time()
        etag = (await http.get("/")).headers["etag"]  # a hit's (a streamed miss has none)
        await past_freshness(stored_at, 1)
        revalidated = await http.get("/", headers={"if-none-match": etag})
        assert (revalidated.status_code, revalidated.content) == (304, b"")
        assert origin.version == 2
        fresh = await http.get("/", headers={"if-none-match": etag})
        assert (fresh.status_code, fresh.content) == (200, body(2))


def test_bad_windows_fail_at_decoration() -> None:
    with pytest.raises(ValueError, match="stale_while_revalidate must be positive"):
        stream_cached(stale_while_revalidate=-5)
    with pytest.raises(ValueError, match="stale_if_error"):
        stream_cached(stale_if_error="soon")


async def test_two_processes_refresh_a_stale_entry_once(
    cache_factory: Callable[..., BaseCache], backend: str
) -> None:
    if backend == "memory":
        pytest.skip("in-process memory is not shared: each process refreshes its own")
    origin = Origin()  # two "processes": each its own decorator over its own cache client
    apps = [origin.app(cache_factory(namespace="swr2"), stale_while_revalidate=60) for _ in "ab"]
    async with client_for(apps[0]) as first, client_for(apps[1]) as second:
        await first.get("/")
        await past_freshness(time.time())
        origin.gate.clear()
        origin.entered.clear()
        refresher = asyncio.ensure_future(first.get("/"))
        await asyncio.wait_for(origin.entered.wait(), 30)
        during = await asyncio.gather(*(http.get("/") for http in (first, second) * 10))
        assert {(marker(r), r.content) for r in during} == {("STALE", body(1))}
        origin.gate.set()
        await refresher
        assert origin.version == 2  # the other process saw the lease and did not refresh
        assert (await second.get("/")).content == body(2)


async def test_a_request_that_found_the_entry_stale_does_not_refresh_it_again(
    cache_factory: Callable[..., BaseCache], backend: str
) -> None:
    """The refresh starts once the stale response is sent: by then another process may
    have refreshed the entry and given its lease back. It is looked up again first."""
    if backend == "memory":
        pytest.skip("in-process memory is not shared: each process refreshes its own")
    origin = Origin()
    apps = [origin.app(cache_factory(namespace="swr3"), stale_while_revalidate=60) for _ in "ab"]
    async with client_for(apps[0]) as first:
        await first.get("/")
        await past_freshness(time.time())
        origin.gate.clear()
        origin.entered.clear()  # set by the first call: wait for the refresh's
        refresher = asyncio.ensure_future(first.get("/"))  # refreshes, held at the gate
        await asyncio.wait_for(origin.entered.wait(), 30)

        sending = asyncio.Event()  # the other process: its stale response sends slowly
        may_send = asyncio.Event()
        sent: list[MutableMapping[str, Any]] = []

        async def send(message: MutableMapping[str, Any]) -> None:
            sending.set()
            await may_send.wait()
            sent.append(message)

        async def receive() -> dict[str, Any]:
            await asyncio.Future()  # never disconnects
            raise AssertionError

        scope = {"type": "http", "method": "GET", "path": "/", "raw_path": b"/",
                 "query_string": b"", "headers": [(b"host", b"test")], "scheme": "http",
                 "server": ("test", 80), "root_path": "", "http_version": "1.1",
                 "asgi": {"version": "3.0", "spec_version": "2.4"}}  # fmt: skip
        other = asyncio.ensure_future(apps[1](scope, receive, send))
        await asyncio.wait_for(sending.wait(), 30)  # it found the entry stale
        origin.gate.set()
        assert (await refresher).content == body(1)  # the first refresh is stored
        may_send.set()
        await asyncio.wait_for(other, 30)
        assert dict(sent[0]["headers"])[b"x-cache"] == b"STALE"
        assert origin.version == 2  # and not refreshed once more
        assert (await first.get("/")).content == body(2)


@pytest.mark.redis
async def test_under_fallback_cache_two_processes_refresh_once(redis_server: RedisServer) -> None:
    origin = Origin()

    def cache() -> FallbackCache:
        primary = Cache(Cache.REDIS, endpoint=redis_server.host, port=redis_server.port)
        return FallbackCache(primary=primary, namespace="swr-fb", primary_timeout=0.5)

    caches = [cache(), cache()]
    apps = [origin.app(c, stale_while_revalidate=60) for c in caches]
    try:
        async with client_for(apps[0]) as first, client_for(apps[1]) as second:
            await first.get("/")
            await past_freshness(time.time())
            origin.gate.clear()
            origin.entered.clear()  # set by the first call: wait for the refresh's
            refresher = asyncio.ensure_future(first.get("/"))
            await asyncio.wait_for(origin.entered.wait(), 30)
            during = await asyncio.gather(*(http.get("/") for http in (first, second) * 5))
            assert {(marker(r), r.content) for r in during} == {("STALE", body(1))}
            origin.gate.set()
            await refresher
            assert origin.version == 2
            assert (await second.get("/")).content == body(2)
            assert all(c.state is State.CLOSED for c in caches)
    finally:
        for c in caches:
            await c.close()
        redis_server.flush()
