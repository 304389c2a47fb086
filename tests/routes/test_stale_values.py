"""Plain values (a decorated function called outside a request, a route that returns a
``dict``) get what streamed routes get: concurrent misses make one call, and the stale
rules of RFC 5861 apply."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
from aiocache.base import BaseCache
from fastapi import FastAPI

from aiocache_ext import stream_cached

from ..helpers import client_for
from .test_stale import past_freshness

TTL = 1  # the values' freshness: every test waits for it to pass


class Source:
    """A slow computation: ``version`` goes up on every call; ``failing`` makes it raise."""

    def __init__(self) -> None:
        self.version = 0
        self.failing = False
        self.gate = asyncio.Event()
        self.gate.set()

    async def compute(self, name: str) -> dict[str, Any]:
        self.version += 1
        await self.gate.wait()
        if self.failing:
            raise ConnectionError("database down")
        return {"name": name, "version": self.version}


def decorated(source: Source, cache: BaseCache, **options: Any) -> Callable[..., Any]:
    @stream_cached(cache=cache, ttl=TTL, **options)
    async def report(name: str) -> dict[str, Any]:
        return await source.compute(name)

    return report


async def test_concurrent_misses_of_a_plain_value_make_one_call(
    cache_factory: Callable[..., BaseCache],
) -> None:
    source = Source()
    report = decorated(source, cache_factory(namespace="values"))
    source.gate.clear()
    calls = [asyncio.ensure_future(report("a")) for _ in range(20)]
    await asyncio.sleep(0.1)  # every call is waiting by now
    source.gate.set()
    assert await asyncio.gather(*calls) == [{"name": "a", "version": 1}] * 20
    assert source.version == 1
    assert await report("b") == {"name": "b", "version": 2}  # another key: its own call


async def test_a_stale_value_is_returned_at_once_while_one_refresh_runs(
    cache_factory: Callable[..., BaseCache],
) -> None:
    source = Source()
    report = decorated(source, cache_factory(namespace="values-swr"), stale_while_revalidate=60)
    assert await report("a") == {"name": "a", "version": 1}
    await past_freshness(time.time(), TTL)
    source.gate.clear()  # the refresh is slow: none of the calls below waits for it
    stale = await asyncio.gather(*(report("a") for _ in range(10)))
    assert stale == [{"name": "a", "version": 1}] * 10
    deadline = time.monotonic() + 30
    while source.version < 2:  # the refresh, a task of its own, calls the function
        assert time.monotonic() < deadline, "no refresh"
        await asyncio.sleep(0.02)
    assert await report("a") == {"name": "a", "version": 1}  # still stale meanwhile
    source.gate.set()
    while await report("a") != {"name": "a", "version": 2}:  # the refresh stores it
        assert time.monotonic() < deadline, "never refreshed"
        await asyncio.sleep(0.02)
    assert source.version == 2  # one refresh


async def test_a_stale_value_stands_in_for_a_failure_inside_the_window_only(
    cache_factory: Callable[..., BaseCache],
) -> None:
    source = Source()
    report = decorated(source, cache_factory(namespace="values-sie"), stale_if_error=1.5)
    assert await report("a") == {"name": "a", "version": 1}
    stored_at = time.time()
    await past_freshness(stored_at, TTL)
    source.failing = True
    assert await report("a") == {"name": "a", "version": 1}
    assert source.version == 2
    await past_freshness(stored_at, TTL + 1.5)
    with pytest.raises(ConnectionError, match="database down"):
        await report("a")


async def test_a_route_returning_a_dict_is_served_stale_and_refreshed(
    cache_factory: Callable[..., BaseCache],
) -> None:
    source = Source()
    app = FastAPI()

    @app.get("/reports/{name}")
    @stream_cached(
        cache=cache_factory(namespace="values-route"), ttl=TTL, stale_while_revalidate=60
    )
    async def report(name: str) -> dict[str, Any]:
        return await source.compute(name)

    async with client_for(app) as http:
        assert (await http.get("/reports/a")).json() == {"name": "a", "version": 1}
        await past_freshness(time.time(), TTL)
        assert (await http.get("/reports/a")).json() == {"name": "a", "version": 1}
        deadline = time.monotonic() + 30
        while (await http.get("/reports/a")).json()["version"] != 2:
            assert time.monotonic() < deadline, "never refreshed"
            await asyncio.sleep(0.02)
        assert source.version == 2
