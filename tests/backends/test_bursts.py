"""Bursts larger than redis-py's connection pool (SPEC §11): no errors, no extra endpoint
calls, and never an outage to ``FallbackCache``, with the clients' default settings."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiocache import Cache
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from aiocache_ext import FallbackCache, State, stream_cached

from ..helpers import client_for
from ..servers import RedisServer

pytestmark = pytest.mark.redis

BURST = 1000
BODY = bytes(range(256)) * 256  # 64 KiB: four segments of 16 KiB, not inline


def redis_cache(server: RedisServer, namespace: str) -> Any:
    return Cache(Cache.REDIS, endpoint=server.host, port=server.port, namespace=namespace)


@pytest.mark.parametrize("through_fallback", [False, True], ids=["redis", "fallback"])
async def test_a_burst_past_the_pool_makes_one_call_and_no_error(
    redis_server: RedisServer, through_fallback: bool
) -> None:
    cache = redis_cache(redis_server, "burst")
    if through_fallback:
        cache = FallbackCache(primary=cache, namespace="burst", primary_timeout=2.0)
    calls = [0]

    @stream_cached(cache=cache, ttl=60, key="hot", key_host=False, segment_size=16 * 1024)
    async def hot(request: Request) -> Response:
        calls[0] += 1

        async def body() -> AsyncIterator[bytes]:
            await asyncio.sleep(0.2)  # a slow origin: the burst piles up behind it
            yield BODY

        return StreamingResponse(body())

    try:
        async with client_for(Starlette(routes=[Route("/", hot)])) as client:
            for _ in range(2):  # cold, then warm
                answers = await asyncio.gather(*(client.get("/") for _ in range(BURST)))
                assert {a.status_code for a in answers} == {200}
                assert all(a.content == BODY for a in answers)
        assert calls[0] == 1
        if through_fallback:
            assert cache.state is State.CLOSED  # a full pool is not an outage
    finally:
        await cache.clear(namespace="burst")
        await cache.close()
