"""The app the cross-process single-flight tests run in several uvicorn workers: a slow
streamed report on Redis (``REDIS_PORT``) that counts its calls in Redis and records
which process made the last one."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import redis.asyncio as aredis
from aiocache import Cache
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

from aiocache_ext import stream_cached

PORT = int(os.environ["REDIS_PORT"])
CHUNK_DELAY = float(os.environ.get("CHUNK_DELAY", "0.05"))
CHUNKS = 20
cache = Cache(Cache.REDIS, endpoint="127.0.0.1", port=PORT, namespace="flight")
counter = aredis.Redis(host="127.0.0.1", port=PORT)


def chunk(index: int) -> bytes:
    return bytes([index]) * 50_000  # 1 MB in all


@stream_cached(cache=cache, ttl=60, key="report", key_host=False, segment_size=64 * 1024,
               single_flight=os.environ.get("SINGLE_FLIGHT", "shared"))  # fmt: skip
async def report(request: Request) -> StreamingResponse:
    await counter.incr("test:calls")
    await counter.set("test:leader", os.getpid())

    async def body() -> AsyncIterator[bytes]:
        for index in range(CHUNKS):
            await asyncio.sleep(CHUNK_DELAY)
            yield chunk(index)

    return StreamingResponse(body(), media_type="application/octet-stream")


async def pid(request: Request) -> StreamingResponse:
    return StreamingResponse(iter([str(os.getpid()).encode()]))


app = Starlette(routes=[Route("/report", report), Route("/pid", pid)])
