"""``stream_cached(cache_status="api")``: every response says what the cache did in an RFC
9211 ``Cache-Status`` header: a hit and its freshness left, a miss stored or why not,
a request the cache did not answer and why, a stale entry served while it is refreshed
or instead of an error."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import pytest
from aiocache.base import BaseCache
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from aiocache_ext import stream_cached

from ..helpers import client_for


def app(cache: BaseCache, respond: Response | None = None, **options: Any) -> Starlette:
    options = {"ttl": 60, "key": "page", "cache_status": "api", **options}

    @stream_cached(cache=cache, **options)
    async def page(request: Request) -> Response:
        if respond is not None:
            return respond
        return PlainTextResponse("page")

    return Starlette(routes=[Route("/", page, methods=["GET", "HEAD", "POST"])])


def ttl_of(status: str) -> int:
    found = re.search(r"; ttl=(-?\d+)", status)
    assert found, status
    return int(found.group(1))


async def test_a_miss_says_it_is_stored_and_a_hit_its_freshness_left(cache: BaseCache) -> None:
    async with client_for(app(cache)) as client:
        miss = await client.get("/")
        hit = await client.get("/")
        not_modified = await client.get("/", headers={"If-None-Match": hit.headers["etag"]})
    assert miss.headers["cache-status"] == "api; fwd=miss; ttl=60; stored"
    assert re.fullmatch(r"api; hit; ttl=(60|59)", hit.headers["cache-status"])
    assert hit.headers["x-cache"] == "HIT"
    assert not_modified.status_code == 304
    assert re.fullmatch(r"api; hit; ttl=(60|59)", not_modified.headers["cache-status"])


async def test_an_uncacheable_response_says_why_it_is_not_stored(cache: BaseCache) -> None:
    private = PlainTextResponse("mine", headers={"Cache-Control": "private"})
    async with client_for(app(cache, private)) as client:
        answers = [(await client.get("/")).headers["cache-status"] for _ in range(2)]
    assert answers == ['api; fwd=miss; detail="response private"'] * 2


async def test_requests_the_cache_does_not_answer_say_why(cache: BaseCache) -> None:
    async with client_for(app(cache, honor_request_cache_control=True)) as client:
        await client.get("/")
        posted = await client.post("/")
        authorized = await client.get("/", headers={"Authorization": "Bearer x"})
        reloaded = await client.get("/", headers={"Cache-Control": "no-cache"})
    assert posted.headers["cache-status"] == "api; fwd=method"
    assert authorized.headers["cache-status"] == 'api; fwd=bypass; detail="authorization"'
    assert reloaded.headers["cache-status"] == (
        'api; fwd=request; ttl=60; stored; detail="request no-cache"'
    )


@pytest.mark.parametrize("window", ["stale_while_revalidate", "stale_if_error"])
async def test_stale_entries_say_whether_they_were_served_at_once_or_instead_of_an_error(
    cache: BaseCache, window: str
) -> None:
    failing = False

    windows: dict[str, Any] = {window: 60}

    @stream_cached(cache=cache, ttl=0.5, key="stale", cache_status="api", **windows)
    async def page(request: Request) -> Response:
        return PlainTextResponse("down", status_code=503 if failing else 200)

    async with client_for(Starlette(routes=[Route("/", page)])) as client:
        await client.get("/")
        stored_at = time.time()
        failing = True
        await asyncio.sleep(max(0.0, stored_at + 0.5 - time.time()) + 0.05)
        stale = await client.get("/")
    assert stale.status_code == 200  # the stale entry, not the 503
    assert stale.headers["x-cache"] == "STALE"
    assert ttl_of(stale.headers["cache-status"]) < 0
    if window == "stale_while_revalidate":  # served at once, refreshed afterwards
        assert re.fullmatch(r"api; hit; ttl=-\d+", stale.headers["cache-status"])
    else:  # the endpoint was called, and failed
        assert re.fullmatch(
            r"api; fwd=stale; fwd-status=503; ttl=-\d+", stale.headers["cache-status"]
        )


async def test_without_the_option_there_is_no_header(cache: BaseCache) -> None:
    async with client_for(app(cache, cache_status=None)) as client:
        answers = [await client.get("/") for _ in range(2)]
    assert [a.headers.get("cache-status") for a in answers] == [None, None]


@pytest.mark.parametrize("name", ["", "my cache", "1st", 'a"b'])
def test_a_name_that_cannot_be_a_cache_status_token_fails_at_decoration(name: str) -> None:
    with pytest.raises(ValueError, match="HINT"):
        stream_cached(cache_status=name)


async def test_a_route_returning_a_plain_value_is_marked_too(cache: BaseCache) -> None:
    calls = []

    @stream_cached(cache=cache, ttl=60, key="prices", cache_status="api")
    async def prices(currency: str) -> dict[str, float]:
        calls.append(currency)
        return {currency: 1.0}

    api = FastAPI()
    api.get("/prices/{currency}")(prices)
    async with client_for(api) as client:
        miss, hit = [await client.get("/prices/eur") for _ in range(2)]
    assert miss.json() == hit.json() == {"eur": 1.0}
    assert calls == ["eur"]
    assert (miss.headers["x-cache"], miss.headers["cache-status"]) == (
        "MISS",
        "api; fwd=miss; stored",
    )
    assert (hit.headers["x-cache"], hit.headers["cache-status"]) == ("HIT", "api; hit")
    assert await prices("usd") == {"usd": 1.0}  # called outside a request: the value only
