"""A streamed CSV report cached with ``stream_cached``: MISS, then HIT with an ETag, then 304.

    python examples/streaming.py               # drives the app in-process and prints
    uvicorn streaming:app --app-dir examples   # or serve it

Uses Redis on 127.0.0.1:6379 (or REDIS_HOST/REDIS_PORT) when it answers, memory otherwise.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator

import httpx
from aiocache import Cache
from aiocache.base import BaseCache
from fastapi import FastAPI
from starlette.responses import StreamingResponse

from aiocache_ext import key_builder, stream_cached, vary_on_headers


def pick_cache() -> BaseCache:
    host = os.environ.get("REDIS_HOST", "127.0.0.1")
    port = int(os.environ.get("REDIS_PORT", "6379"))
    try:
        socket.create_connection((host, port), timeout=0.2).close()
    except OSError:
        return Cache(Cache.MEMORY, namespace="reports")
    return Cache(Cache.REDIS, endpoint=host, port=port, namespace="reports")


app = FastAPI(title="stream_cached example")
cache = pick_cache()


@app.get("/report.csv")
@vary_on_headers("Accept-Language")
@stream_cached(ttl=600, cache=cache, key_builder=key_builder)
async def report(year: int = 2024) -> StreamingResponse:
    """Rows are produced one by one (a slow query, say) and sent as they come."""

    async def rows() -> AsyncIterator[str]:
        yield "month,revenue\n"
        for month in range(1, 13):
            await asyncio.sleep(0.01)
            yield f"{year}-{month:02d},{1000 + month * 37}\n"

    return StreamingResponse(rows(), media_type="text/csv; charset=utf-8")


async def main() -> None:
    print(f"cache: {type(cache).__name__}")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://example") as client:
        for attempt in ("first", "second"):
            response = await client.get("/report.csv")
            lines = response.text.count("\n")
            print(f"{attempt:>6} GET: {response.headers['x-cache']:4} {lines} lines, "
                  f"etag={response.headers.get('etag', '-')}")  # fmt: skip
        etag = response.headers["etag"]
        again = await client.get("/report.csv", headers={"If-None-Match": etag})
        print(f"If-None-Match: {again.status_code}, {len(again.content)} body bytes")
    await cache.close()


if __name__ == "__main__":
    asyncio.run(main())
