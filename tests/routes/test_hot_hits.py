"""A hit this process holds (in-process memory, a near tier) is prepared once and answered
again, on every backend the same as a hit worked out each time: a replaced, invalidated
or expired entry is never answered again, ``Age`` and the freshness left move on, and
what a middleware does to one response's headers stays in that response."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import httpx
from aiocache import MemcachedCache
from aiocache.base import BaseCache
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from aiocache_ext import invalidate, stream_cached

from ..helpers import client_for

NO_CACHE = {"cache-control": "no-cache"}  # honoured: the entry is written again


def apps(cache: BaseCache, calls: list[int], ttl: float = 60, **options: Any) -> list[Any]:
    """A Starlette route and a FastAPI route returning a plain value, both cached."""
    options = {"cache": cache, "ttl": ttl, "key_host": False, **options}

    @stream_cached(key="page", honor_request_cache_control=True, **options)
    async def page(request: Request) -> Response:
        calls.append(1)
        return PlainTextResponse(f"call {len(calls)}")

    values = FastAPI()

    @values.get("/")
    @stream_cached(key="value", honor_request_cache_control=True, **options)
    async def value() -> dict[str, int]:
        calls.append(1)
        return {"call": len(calls)}

    return [Starlette(routes=[Route("/", page)]), values]


def body(response: httpx.Response) -> str:
    return response.text if "text/plain" in response.headers["content-type"] else response.json()


async def test_an_entry_replaced_or_invalidated_is_not_answered_again(cache: BaseCache) -> None:
    calls: list[int] = []
    for app in apps(cache, calls):
        async with client_for(app) as client:
            first = await client.get("/")
            hits = [await client.get("/") for _ in range(3)]
            assert [(r.headers["x-cache"], body(r)) for r in hits] == [("HIT", body(first))] * 3
            replaced = await client.get("/", headers=NO_CACHE)  # the endpoint, stored again
            after = await client.get("/")
            assert (after.headers["x-cache"], body(after)) == ("HIT", body(replaced))
            assert body(replaced) != body(first)
            if isinstance(app, FastAPI) and isinstance(cache, MemcachedCache):
                continue  # memcached cannot list keys: plain values stay until their ttl
            await invalidate(namespace=cache.namespace or "", cache=cache)
            missed = await client.get("/")
            assert missed.headers["x-cache"] == "MISS"
            assert body(missed) not in (body(first), body(replaced))
            assert body(await client.get("/")) == body(missed)
        calls.clear()


async def test_an_expired_entry_is_not_answered_again(cache: BaseCache) -> None:
    calls: list[int] = []
    for app in apps(cache, calls, ttl=0.3):
        if isinstance(app, FastAPI) and isinstance(cache, MemcachedCache):
            continue  # memcached keeps a plain value for whole seconds
        async with client_for(app) as client:
            first = await client.get("/")
            assert (await client.get("/")).headers["x-cache"] == "HIT"
            await asyncio.sleep(0.4)
            again = await client.get("/")
            assert (again.headers["x-cache"], body(again) != body(first)) == ("MISS", True)
        calls.clear()


async def test_age_and_freshness_left_move_on_while_a_hit_is_answered_again(
    cache: BaseCache,
) -> None:
    app = apps(cache, [], ttl=3, cache_status="api", client_max_age=True)[0]
    async with client_for(app) as client:
        await client.get("/")
        stored = time.time()  # the miss stored its entry before it returned
        early = [await client.get("/") for _ in range(2)]
        await asyncio.sleep(max(0.0, stored + 1.05 - time.time()))
        later = await client.get("/")
    for hit in (*early, later):
        age, left = int(hit.headers["age"]), ttl_of(hit.headers["cache-status"])
        assert age + left == 2, hit.headers  # 3 s of freshness: whole seconds past and left
        assert hit.headers["cache-control"] == f"max-age={left}" if left else "no-cache"
    assert int(later.headers["age"]) >= 1


async def test_what_a_middleware_does_to_a_hits_headers_stays_in_that_response(
    cache: BaseCache,
) -> None:
    @stream_cached(cache=cache, ttl=60, key="big", key_host=False)
    async def big(request: Request) -> Response:
        return PlainTextResponse("x" * 2000)

    app = Starlette(routes=[Route("/", big)], middleware=[Middleware(GZipMiddleware)])
    async with client_for(app) as client:
        await client.get("/", headers={"accept-encoding": "identity"})
        for encoding in ("gzip", "identity", "gzip", "identity"):
            hit = await client.get("/", headers={"accept-encoding": encoding})
            assert hit.headers["x-cache"] == "HIT"
            assert hit.headers.get("content-encoding") == (
                None if encoding == "identity" else "gzip"
            )
            assert hit.text == "x" * 2000
            if encoding == "identity":
                assert hit.headers["content-length"] == "2000"


def ttl_of(status: str) -> int:
    found = re.search(r"; ttl=(-?\d+)", status)
    assert found, status
    return int(found.group(1))
