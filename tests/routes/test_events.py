"""Every outcome goes through one event hook (``aiocache_ext.events``), and the
``prometheus`` and ``opentelemetry`` extras turn the events into metrics, with routes
labelled by their path template, never the raw path."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest
from aiocache import Cache
from aiocache.base import BaseCache
from fastapi import FastAPI, Request
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from prometheus_client import CollectorRegistry, generate_latest
from starlette.responses import PlainTextResponse, Response

from aiocache_ext import FallbackCache, events, stream_cached
from aiocache_ext.contrib import opentelemetry as otel
from aiocache_ext.contrib import prometheus

from ..helpers import client_for


@pytest.fixture
def seen() -> Iterator[list[events.Event]]:
    found: list[events.Event] = []
    stop = events.subscribe(found.append)
    try:
        yield found
    finally:
        stop()


def outcomes(seen: list[events.Event]) -> list[tuple[str, str | None, str | None]]:
    kinds = {"hit", "miss", "stale", "bypass", "uncacheable", "coalesced"}
    return [(e.kind, e.route, e.reason) for e in seen if e.kind in kinds]


def shop(
    cache: BaseCache, gate: asyncio.Event | None = None, entered: asyncio.Event | None = None
) -> FastAPI:
    app = FastAPI()

    @app.api_route("/items/{item_id}", methods=["GET", "POST"])
    @stream_cached(cache=cache, ttl=60)
    async def item(item_id: int, request: Request) -> Response:
        if entered is not None:
            entered.set()
        if gate is not None:
            await gate.wait()
        return PlainTextResponse(f"item {item_id}")

    @app.get("/private")
    @stream_cached(cache=cache, ttl=60)
    async def private() -> Response:
        return PlainTextResponse("mine", headers={"Cache-Control": "private"})

    @app.get("/prices")
    @stream_cached(cache=cache, ttl=0.3, stale_while_revalidate=60)
    async def prices() -> dict[str, float]:
        return {"eur": 1.0}

    return app


async def test_every_outcome_is_told_once_with_the_route_template(
    cache: BaseCache, seen: list[events.Event]
) -> None:
    async with client_for(shop(cache)) as client:
        for path in ["/items/7", "/items/7", "/items/8"]:
            assert (await client.get(path)).status_code == 200
        await client.post("/items/7")
        await client.get("/items/7", headers={"Authorization": "Bearer x"})
        await client.get("/private")
        await client.get("/prices")
        stored_at = time.time()
        await asyncio.sleep(max(0.0, stored_at + 0.3 - time.time()) + 0.05)
        await client.get("/prices")
        told = outcomes(seen)
        deadline = time.monotonic() + 10
        while (await client.get("/prices")).headers["x-cache"] != "HIT":
            assert time.monotonic() < deadline, "the stale value was never refreshed"
            await asyncio.sleep(0.02)  # setup: its refresh (a task) ends before the cache closes
    item = "/items/{item_id}"
    assert told == [
        ("miss", item, None),
        ("hit", item, None),
        ("miss", item, None),
        ("bypass", item, "method"),
        ("bypass", item, "authorization"),
        ("uncacheable", "/private", "response private"),
        ("miss", "/prices", None),
        ("stale", "/prices", "revalidate"),
    ]
    stored = [(e.kind, e.route) for e in seen if e.kind in ("stored", "aborted")]
    assert stored == [("stored", item), ("stored", item)]  # /items/7, /items/8
    calls = [e for e in seen if e.kind == "backend"]
    if cache.NAME == "memory":  # in-process: nothing to wait for, not timed
        assert not calls
    else:
        assert calls and all(e.seconds is not None and e.seconds >= 0 for e in calls)
        assert {e.op for e in calls} >= {"multi_get", "set"}
        assert {e.backend for e in calls} == {cache.NAME}


async def test_concurrent_misses_are_one_miss_and_coalesced_hits(
    cache: BaseCache, seen: list[events.Event]
) -> None:
    gate, entered = asyncio.Event(), asyncio.Event()
    async with client_for(shop(cache, gate, entered)) as client:
        first = asyncio.ensure_future(client.get("/items/1"))
        await asyncio.wait_for(entered.wait(), 10)  # setup: the first request leads
        others = [asyncio.ensure_future(client.get("/items/1")) for _ in range(5)]
        await asyncio.sleep(0.1)  # setup: they wait for it
        gate.set()
        answers = await asyncio.gather(first, *others)
    assert {a.text for a in answers} == {"item 1"}
    kinds = sorted(kind for kind, _, _ in outcomes(seen))
    assert kinds == ["coalesced"] * 5 + ["miss"]


async def test_a_listener_that_raises_is_dropped_with_one_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls = []

    def broken(event: events.Event) -> None:
        calls.append(event)
        raise RuntimeError("broken listener")

    events.subscribe(broken)
    app = shop(Cache(Cache.MEMORY))
    with caplog.at_level(logging.ERROR, logger="aiocache_ext.events"):
        async with client_for(app) as client:
            answers = [await client.get("/items/1") for _ in range(3)]
    assert [a.status_code for a in answers] == [200] * 3
    assert len(calls) == 1
    assert len([r for r in caplog.records if "broken listener" in r.getMessage()]) == 1
    assert not events.listening()


async def test_prometheus_counts_outcomes_by_route_template_and_times_backends(
    cache: BaseCache,
) -> None:
    registry = CollectorRegistry()
    disable = prometheus.enable(registry)
    try:
        assert prometheus.enable(registry) is disable  # once per registry
        async with client_for(shop(cache)) as client:
            for n in [1, 1, 1, 2]:
                await client.get(f"/items/{n}")
        text = generate_latest(registry).decode()
    finally:
        disable()
    item = 'route="/items/{item_id}"'
    assert f'aiocache_ext_requests_total{{outcome="hit",{item}}} 2.0' in text
    assert f'aiocache_ext_requests_total{{outcome="miss",{item}}} 2.0' in text
    assert f'aiocache_ext_entries_total{{result="stored",{item}}} 2.0' in text
    assert "/items/1" not in text and "/items/2" not in text
    timed = f'aiocache_ext_backend_seconds_count{{backend="{cache.NAME}",op="multi_get"}}'
    assert (timed in text) is (cache.NAME != "memory")
    assert not events.listening()
    assert b"aiocache_ext" not in generate_latest(registry)  # unregistered


async def test_opentelemetry_records_the_same_metrics(cache: BaseCache) -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    stop = otel.enable(provider)
    try:
        async with client_for(shop(cache)) as client:
            for n in [1, 1, 1, 2]:
                await client.get(f"/items/{n}")
    finally:
        stop()
    data = reader.get_metrics_data()
    assert data is not None
    points: dict[tuple[str, tuple[tuple[str, Any], ...]], Any] = {
        (metric.name, tuple(sorted((point.attributes or {}).items()))): point
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        for point in metric.data.data_points
    }
    item = ("route", "/items/{item_id}")
    assert points["aiocache_ext.requests", (("outcome", "hit"), item)].value == 2
    assert points["aiocache_ext.requests", (("outcome", "miss"), item)].value == 2
    backend = ("aiocache_ext.backend.duration", (("backend", cache.NAME), ("op", "multi_get")))
    if cache.NAME != "memory":
        assert points[backend].count > 0
    provider.shutdown()


@pytest.mark.redis
async def test_the_breaker_state_is_exported(redis_factory: Any) -> None:
    server = redis_factory()
    registry = CollectorRegistry()
    disable = prometheus.enable(registry)
    cache = FallbackCache(
        primary=Cache(Cache.REDIS, endpoint=server.host, port=server.port),
        namespace="shop", primary_timeout=0.2,
    )  # fmt: skip

    def state() -> float | None:
        return registry.get_sample_value("aiocache_ext_breaker_state", {"cache": "shop"})

    try:
        await cache.set("k", 1)
        server.pause()
        try:
            await cache.set("k", 2)  # on the fallback: the breaker opens
            assert state() == 1
        finally:
            server.resume()
        deadline = time.monotonic() + 10
        while state() != 0:
            assert time.monotonic() < deadline, state()
            await cache.get("k")
            await asyncio.sleep(0.05)
    finally:
        disable()
        await cache.close()
