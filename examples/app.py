"""Example FastAPI app: aiocache's ``cached`` with ``aiocache_ext`` keys, a streamed report
varied on ``Accept-Language``, a write route that invalidates, a quote served stale while
it is refreshed, and Prometheus metrics on ``/metrics``.

Run it with ``uvicorn app:app --app-dir examples`` or through ``scripts/demo``. With
``REDIS_PORT`` (and ``REDIS_HOST``) set, the shop routes share a ``FallbackCache`` on that
Redis (or memcached, with ``MEMCACHED_PORT``), so several workers share entries and keep
serving if it goes away.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator

from aiocache import Cache, cached
from aiocache.base import BaseCache
from fastapi import FastAPI, Request
from starlette.responses import JSONResponse, StreamingResponse

from aiocache_ext import (
    CompressionSerializer,
    FallbackCache,
    KeyBuilder,
    invalidate,
    key_builder,
    stream_cached,
    vary_on_headers,
)

app = FastAPI(title="aiocache_ext example")
computed = {"hello": 0, "plain": 0}
try:  # the examples extra brings prometheus-client: cache metrics on /metrics
    from prometheus_client import make_asgi_app

    from aiocache_ext.contrib import prometheus

    prometheus.enable()
    app.mount("/metrics", make_asgi_app())
except ImportError:  # pragma: no cover - without the extra, no metrics
    pass


class Session:
    """Stands for a db session from a dependency: no stable text, so kept out of keys."""


@app.get("/hello/{name}")
@cached(ttl=3600, cache=Cache.MEMORY, namespace="example", key_builder=key_builder)
async def hello(name: str, request: Request) -> dict[str, object]:
    """Expensive route: the key is ``name`` only; the per-request ``request`` is left out."""
    computed["hello"] += 1
    await asyncio.sleep(0.3)
    return {"hello": name, "computed": computed["hello"], "at": time.time()}


@app.get("/plain/{name}")
@cached(ttl=3600, cache=Cache.MEMORY, namespace="example")
async def plain(name: str, request: Request) -> dict[str, object]:
    """The same route with aiocache's default key: it contains ``request``, so it never hits."""
    computed["plain"] += 1
    await asyncio.sleep(0.3)
    return {"hello": name, "computed": computed["plain"], "at": time.time()}


report_keys = KeyBuilder(ignore_types=[Session], prefix="v1:", max_length=120)


@cached(ttl=600, cache=Cache.MEMORY, namespace="example", key_builder=report_keys)
async def build_report(db: Session, filters: dict[str, object]) -> list[int]:
    """A plain function: ``db`` is ignored by type, ``filters`` is keyed in sorted order."""
    computed["report"] = computed.get("report", 0) + 1
    return list(range(3))


@app.get("/report")
async def report() -> dict[str, object]:
    rows = await build_report(Session(), {"year": 2024, "tags": {"b", "a"}})
    rows = await build_report(Session(), {"tags": {"a", "b"}, "year": 2024})
    key = report_keys(build_report, Session(), {"year": 2024, "tags": {"b", "a"}})
    return {"rows": rows, "computed": computed["report"], "key": key}


def shop_cache() -> BaseCache:
    """A FallbackCache on Redis when ``REDIS_PORT`` is set (on memcached when
    ``MEMCACHED_PORT`` is), in-process memory otherwise."""
    host = os.environ.get("REDIS_HOST", "127.0.0.1")
    if "REDIS_PORT" in os.environ:
        primary = Cache(Cache.REDIS, endpoint=host, port=int(os.environ["REDIS_PORT"]))
    elif "MEMCACHED_PORT" in os.environ:
        primary = Cache(Cache.MEMCACHED, endpoint=host, port=int(os.environ["MEMCACHED_PORT"]))
    else:
        return Cache(Cache.MEMORY, namespace="shop")
    timeout = float(os.environ.get("CACHE_PRIMARY_TIMEOUT", "0.05"))
    return FallbackCache(
        primary=primary,
        namespace="shop",
        serializer=CompressionSerializer(),
        primary_timeout=timeout,
    )


shop = shop_cache()


@app.get("/report.csv")
@vary_on_headers("Accept-Language")
@stream_cached(ttl=600, cache=shop, key_builder=key_builder)
async def sales_report(request: Request, year: int = 2024) -> StreamingResponse:
    """Rows streamed as they are produced; ``X-Computed-By`` names the worker that ran it."""
    french = request.headers.get("accept-language", "").lower().startswith("fr")

    async def rows() -> AsyncIterator[str]:
        yield "mois,ventes\n" if french else "month,sales\n"
        for month in range(1, 13):
            await asyncio.sleep(0.005)
            yield f"{year}-{month:02d},{1000 + month * 37}\n"

    headers = {"X-Computed-By": str(os.getpid())}
    return StreamingResponse(rows(), media_type="text/csv; charset=utf-8", headers=headers)


@app.get("/items/{item_id}")
@stream_cached(ttl=600, cache=shop, key_builder=key_builder, cache_status="shop")
async def item(item_id: int) -> JSONResponse:
    """A JSONResponse (rather than a dict) is a stored response: ``invalidate`` reaches it
    on every backend, memcached included, through the namespace token."""
    return JSONResponse({"item": item_id, "computed_by": os.getpid(), "computed_at": time.time()})


@app.get("/slow/{name}")
@stream_cached(ttl=600, cache=shop, key_builder=key_builder)
async def slow(name: str) -> JSONResponse:
    """An expensive route (0.3 s per call, counted in ``/health/cache``): under a burst on a
    cold key, one call; everyone else waits for it and gets its stored response."""
    computed["slow"] = computed.get("slow", 0) + 1
    await asyncio.sleep(0.3)
    return JSONResponse({"name": name, "computed_by": os.getpid()})


@app.get("/quote")
@stream_cached(ttl=1, stale_while_revalidate=60, cache=shop, cache_status="shop")
async def quote() -> JSONResponse:
    """Fresh for 1 s, then served stale at once (``X-Cache: STALE``) for up to a minute
    while one request refreshes it in the background."""
    computed["quote"] = computed.get("quote", 0) + 1
    await asyncio.sleep(0.3)
    return JSONResponse({"quote": computed["quote"], "at": time.time()})


@app.get("/uncached/items/{item_id}")
async def item_uncached(item_id: int) -> dict[str, object]:
    """The same route without a cache, for comparisons."""
    return {"item": item_id, "computed_by": os.getpid(), "computed_at": time.time()}


BLOCK = bytes(range(256)) * 256  # 64 KiB


async def blob_chunks() -> AsyncIterator[bytes]:
    for _ in range(16):  # 1 MiB in 64 KiB chunks
        yield BLOCK


@app.get("/blob")
@stream_cached(ttl=600, cache=shop, key_builder=key_builder)
async def blob() -> StreamingResponse:
    return StreamingResponse(blob_chunks(), media_type="application/octet-stream")


@app.get("/uncached/blob")
async def blob_uncached() -> StreamingResponse:
    return StreamingResponse(blob_chunks(), media_type="application/octet-stream")


@app.post("/items/{item_id}")
@invalidate(namespace="shop", cache=shop)
async def update_item(item_id: int) -> dict[str, object]:
    """A write: every entry of the shop namespace is dropped once it succeeds."""
    return {"updated": item_id}


@app.get("/health/cache")
async def cache_health() -> dict[str, object]:
    """The shop cache and its breaker's state: ``closed`` (on Redis), ``open`` (Redis away:
    served from memory), ``recovering``; ``local`` when the shop cache is in-process
    memory (no Redis configured: nothing to break)."""
    state = getattr(shop, "state", None)
    return {"cache": type(shop).__name__, "state": state.value if state else "local",
            "pid": os.getpid(), "computed": computed}  # fmt: skip
