"""The app the near-cache worker test runs in several uvicorn workers: a small JSON route
cached through a ``NearCache`` over Redis (``REDIS_PORT``), whose body is the version
Redis holds (``test:version``), and a write route that bumps the version and invalidates
the namespace, as a service's write route would."""

from __future__ import annotations

import os

import redis.asyncio as aredis
from aiocache import Cache
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from aiocache_ext import NearCache, invalidate, stream_cached

PORT = int(os.environ["REDIS_PORT"])
cache = NearCache(Cache(Cache.REDIS, endpoint="127.0.0.1", port=PORT), namespace="near")
counter = aredis.Redis(host="127.0.0.1", port=PORT)


@stream_cached(cache=cache, ttl=600, key="item")
async def item(request: Request) -> JSONResponse:
    version = int(await counter.get("test:version") or 0)
    return JSONResponse({"version": version, "pid": os.getpid()})


async def write(request: Request) -> JSONResponse:
    version = await counter.incr("test:version")
    await invalidate(namespace="near", cache=cache)
    return JSONResponse({"version": version})


async def ready(request: Request) -> JSONResponse:
    """Ready once the near tier's invalidation link is up (it starts with a read)."""
    await cache.get("warm-up")
    return JSONResponse({"ready": cache.link.ready}, status_code=200 if cache.link.ready else 503)


app = Starlette(
    routes=[Route("/item", item), Route("/write", write, methods=["POST"]), Route("/ready", ready)]
)
