"""The app the cross-process single-flight tests run in several uvicorn workers: a slow
streamed report cached on Redis (``REDIS_PORT``), or on memcached when
``MEMCACHED_PORT`` is set, that counts its calls in Redis and records which process made
the last one; and the same report with a one-second ttl and a stale window (``/stale``),
or an error window and an origin that fails on demand (``/fragile``)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import redis.asyncio as aredis
from aiocache import Cache
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from aiocache_ext import stream_cached

PORT = int(os.environ["REDIS_PORT"])
CHUNK_DELAY = float(os.environ.get("CHUNK_DELAY", "0.05"))
CHUNKS = 20
MEMCACHED_PORT = os.environ.get("MEMCACHED_PORT")
if MEMCACHED_PORT:
    cache = Cache(Cache.MEMCACHED, endpoint="127.0.0.1", port=int(MEMCACHED_PORT))
else:
    cache = Cache(Cache.REDIS, endpoint="127.0.0.1", port=PORT)
counter = aredis.Redis(host="127.0.0.1", port=PORT)


def chunk(index: int) -> bytes:
    return bytes([index]) * 50_000  # 1 MB in all


async def report(request: Request) -> StreamingResponse:
    await counter.incr("test:calls")
    await counter.set("test:leader", os.getpid())

    async def body() -> AsyncIterator[bytes]:
        for index in range(CHUNKS):
            await asyncio.sleep(CHUNK_DELAY)
            yield chunk(index)

    return StreamingResponse(body(), media_type="application/octet-stream")


async def fragile(request: Request) -> Response:
    """The report, unless Redis says ``test:failing`` (``raise`` or ``503``)."""
    failing = await counter.get("test:failing")
    await counter.incr("test:calls")
    if failing == b"raise":
        raise RuntimeError("origin down")
    if failing == b"503":
        return Response(b"unavailable", status_code=503)
    return await report(request)


async def pid(request: Request) -> StreamingResponse:
    return StreamingResponse(iter([str(os.getpid()).encode()]))


options = {
    "cache": cache, "namespace": "flight", "key_host": False, "segment_size": 64 * 1024,
    "single_flight": os.environ.get("SINGLE_FLIGHT", "shared"),
}  # fmt: skip
cached_report = stream_cached(ttl=60, key="report", **options)(report)
stale_report = stream_cached(ttl=1, key="stale", stale_while_revalidate=60, **options)(report)
fragile_report = stream_cached(ttl=1, key="fragile", stale_if_error=3, **options)(fragile)
app = Starlette(
    routes=[
        Route("/report", cached_report), Route("/stale", stale_report),
        Route("/fragile", fragile_report), Route("/pid", pid),
    ]
)  # fmt: skip
