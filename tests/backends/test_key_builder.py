"""key_builder under plain ``aiocache.cached`` against real memory, Redis and memcached."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from aiocache import cached
from aiocache.base import BaseCache
from fastapi import Depends, FastAPI, Request
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from aiocache_ext import KeyBuilder, key_builder

from ..helpers import same_server

HEADER_VALUE = ("text/html; q=0.9, tab\there new\nline ü ✓ " * 300)[:10_240]


class Session:
    """A per-request db session: its only text is a memory address."""


def get_session() -> Session:
    return Session()


async def test_calls_with_different_requests_share_one_entry(cache: BaseCache) -> None:
    calls = []

    @cached(cache=type(cache), key_builder=key_builder, **same_server(cache), namespace="routes")
    async def price(request: Request, item: str, qty: int = 1) -> dict[str, Any]:
        calls.append(item)
        return {"item": item, "total": qty * 3}

    try:
        for path in ("/a", "/b", "/c"):
            request = Request({"type": "http", "method": "GET", "path": path, "headers": []})
            assert await price(request, "apple") == {"item": "apple", "total": 3}
        assert await price(request, item="apple", qty=1) == {"item": "apple", "total": 3}
        assert calls == ["apple"]
        assert await price(request, "pear", qty=2) == {"item": "pear", "total": 6}
        assert calls == ["apple", "pear"]
    finally:
        await price.cache.close()


async def test_key_from_a_10k_header_round_trips(cache: BaseCache) -> None:
    def endpoint(accept: str) -> None: ...

    key = key_builder(endpoint, HEADER_VALUE)
    assert len(key) <= 200
    assert await cache.set(key, "stored")
    assert await cache.get(key) == "stored"
    other = key_builder(endpoint, HEADER_VALUE[:-1] + "?")
    assert await cache.get(other) is None


async def test_longest_key_fits_memcached_with_its_namespace(
    cache_factory: Callable[..., BaseCache],
) -> None:
    namespace = "n" * 50
    cache = cache_factory(namespace=namespace)
    builder = KeyBuilder(max_length=200)
    key = builder(test_longest_key_fits_memcached_with_its_namespace, "x" * 5000)
    assert len(namespace + key) == 250
    assert await cache.set(key, "v")
    assert await cache.get(key) == "v"


@pytest.fixture
async def fastapi_app(cache: BaseCache) -> AsyncIterator[tuple[FastAPI, list[int]]]:
    app = FastAPI()
    calls: list[int] = []

    @app.get("/items/{item_id}")
    @cached(
        cache=type(cache),
        key_builder=KeyBuilder(ignore_types=[Session]),
        **same_server(cache),
        namespace="routes",
    )
    async def read_item(
        item_id: int, request: Request, db: Session = Depends(get_session)
    ) -> dict[str, int]:
        calls.append(item_id)
        return {"item_id": item_id, "calls": len(calls)}

    yield app, calls
    await read_item.cache.close()


async def test_fastapi_route_with_request_and_db_session_hits(
    fastapi_app: tuple[FastAPI, list[int]],
) -> None:
    app, calls = fastapi_app
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        bodies = [(await client.get("/items/7", headers={"x-n": str(n)})).json() for n in range(3)]
        other = (await client.get("/items/8")).json()
    assert bodies == [{"item_id": 7, "calls": 1}] * 3
    assert other == {"item_id": 8, "calls": 2}
    assert calls == [7, 8]


async def test_starlette_endpoint_hits(cache: BaseCache) -> None:
    calls: list[str] = []

    @cached(cache=type(cache), key_builder=key_builder, **same_server(cache), namespace="routes")
    async def compute(name: str) -> dict[str, str]:
        calls.append(name)
        return {"hello": name}

    async def endpoint(request: Request) -> JSONResponse:
        return JSONResponse(await compute(request.query_params.get("name", "")))

    app = Starlette(routes=[Route("/", endpoint)])
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            for _ in range(3):
                assert (await client.get("/", params={"name": "é ü"})).json() == {"hello": "é ü"}
    finally:
        await compute.cache.close()
    assert calls == ["é ü"]
