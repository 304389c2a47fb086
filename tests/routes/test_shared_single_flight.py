"""Single flight across processes: concurrent misses of one key on a shared backend make
one endpoint call, whichever process each request reaches; a leader that dies is taken
over. Two processes are two apps here, each with its own decorator and cache client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiocache import Cache
from aiocache.base import BaseCache
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

from aiocache_ext import FallbackCache, State, stream_cached

from ..helpers import client_for
from ..servers import RedisServer

BODY = b"".join(bytes([i]) * 1000 for i in range(64))


class Origin:
    """The slow endpoint's calls, and the gate that lets them answer."""

    def __init__(self) -> None:
        self.calls: list[int] = []
        self.entered: asyncio.Queue[int] = asyncio.Queue()
        self.release = asyncio.Event()

    async def called(self, times: int) -> None:
        """Return once the endpoint was called ``times`` times (and a little later, so
        every other request is waiting by then)."""
        for _ in range(times):
            await asyncio.wait_for(self.entered.get(), 30)
        await asyncio.sleep(0.2)


def process(cache: BaseCache, origin: Origin, **options: Any) -> Starlette:
    """One "process": its own decorator over its own cache client."""

    @stream_cached(cache=cache, ttl=60, key="report", segment_size=4096, **options)
    async def report(request: Request) -> StreamingResponse:
        origin.calls.append(1)
        origin.entered.put_nowait(1)
        await origin.release.wait()  # the slow origin: every request arrives meanwhile

        async def body() -> AsyncIterator[bytes]:
            for start in range(0, len(BODY), 10_000):
                yield BODY[start : start + 10_000]

        return StreamingResponse(body())

    return Starlette(routes=[Route("/", report)])


@pytest.mark.parametrize("single_flight", ["shared", "process"])
async def test_concurrent_misses_in_two_processes_make_one_call(
    cache_factory: Callable[..., BaseCache], backend: str, single_flight: str
) -> None:
    if backend == "memory":
        pytest.skip("in-process memory is not shared: the per-process single flight is all")
    origin = Origin()
    apps = [
        process(cache_factory(namespace="sf"), origin, single_flight=single_flight)
        for _ in range(2)
    ]
    async with client_for(apps[0]) as one, client_for(apps[1]) as two:
        requests = [asyncio.ensure_future(c.get("/")) for c in (one, two) for _ in range(10)]
        await origin.called(1)
        origin.release.set()
        responses = await asyncio.gather(*requests)
    assert len(origin.calls) == (1 if single_flight == "shared" else 2)  # one per process
    assert all(r.status_code == 200 and r.content == BODY for r in responses)


@pytest.mark.redis
async def test_a_fallback_cache_shares_while_redis_serves_and_not_while_it_is_down(
    redis_factory: Callable[[], RedisServer],
) -> None:
    server = redis_factory()
    caches = [
        FallbackCache(
            primary=Cache(Cache.REDIS, endpoint=server.host, port=server.port),
            namespace="sf",
            primary_timeout=0.5,
        )
        for _ in range(2)
    ]
    try:
        for down in (False, True):
            origin = Origin()
            apps = [process(cache, origin) for cache in caches]
            if down:
                server.pause()
                for cache in caches:  # each process notices the outage
                    await cache.get("probe")
                assert {cache.state for cache in caches} == {State.OPEN}
            async with client_for(apps[0]) as one, client_for(apps[1]) as two:
                clients = (one, two)
                requests = [asyncio.ensure_future(c.get("/")) for c in clients for _ in range(5)]
                await origin.called(2 if down else 1)
                origin.release.set()
                responses = await asyncio.gather(*requests)
            assert all(r.content == BODY for r in responses)
            assert len(origin.calls) == (2 if down else 1)  # down: one per process
    finally:
        server.resume()
        for cache in caches:
            await cache.close()
