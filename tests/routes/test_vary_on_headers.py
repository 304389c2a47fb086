"""vary_on_headers through real FastAPI and Starlette apps, on memory, Redis and memcached."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import pytest
from aiocache import Cache, cached
from aiocache.base import BaseCache
from aiocache.serializers import PickleSerializer
from fastapi import FastAPI, Request, Response
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from aiocache_ext import key_builder, stream_cached, vary_on_headers

from ..helpers import client_for, same_server

CachedFactory = Callable[..., cached]


def seed_key_builder(func: Callable[..., Any], **kwargs: Any) -> str:
    """The key builder from our users' notes: knows nothing about headers."""
    kwargs.pop("request", None)
    return f"{func.__module__}:{func.__name__}:{sorted(kwargs.items())}"


@pytest.fixture
def accept_app(cached_here: CachedFactory) -> tuple[FastAPI, list[str]]:
    """``/hello`` declares no ``request``; ``/seed`` uses the seed's key builder."""
    app = FastAPI()
    calls: list[str] = []

    @app.get("/hello")
    @vary_on_headers("Accept")
    @cached_here(ttl=60, namespace="vary", key_builder=key_builder)
    async def hello(name: str = "world") -> dict[str, Any]:
        calls.append(name)
        return {"hello": name, "call": len(calls)}

    @app.get("/seed")
    @vary_on_headers("accept")
    @cached_here(ttl=60, namespace="vary", key_builder=seed_key_builder)
    async def seed(request: Request, page: int = 1) -> dict[str, Any]:
        calls.append(f"seed {request.headers.get('accept')}")
        return {"page": page, "call": len(calls)}

    return app, calls


@pytest.mark.parametrize("path", ["/hello", "/seed"])
async def test_one_entry_per_accept_value_with_vary_on_hits_and_misses(
    accept_app: tuple[FastAPI, list[str]], path: str
) -> None:
    app, calls = accept_app
    async with client_for(app) as client:
        responses = [
            await client.get(path, headers={"Accept": accept})
            for accept in ("text/html", "application/json", "text/html", "application/json")
        ]
    assert [r.status_code for r in responses] == [200] * 4
    assert [r.json()["call"] for r in responses] == [1, 2, 1, 2]
    assert len(calls) == 2
    assert [r.headers.get_list("vary") for r in responses] == [[path_vary[path]]] * 4


path_vary = {"/hello": "Accept", "/seed": "accept"}


async def test_equivalent_values_share_an_entry_and_absent_is_its_own(
    accept_app: tuple[FastAPI, list[str]],
) -> None:
    app, calls = accept_app
    assert calls == []
    equivalent = ["text/html,application/json", "text/html, application/json",
                  "TEXT/HTML ,  Application/JSON"]  # fmt: skip
    async with client_for(app) as client:
        bodies = [(await client.get("/hello", headers={"Accept": a})).json() for a in equivalent]
        empty = (await client.get("/hello", headers={"Accept": ""})).json()
        client.headers.pop("accept")  # httpx sends "*/*" unless told not to
        absent = (await client.get("/hello")).json()
    assert [b["call"] for b in bodies] == [1, 1, 1]
    assert len(calls) == 3
    assert empty["call"] == 2
    assert absent["call"] == 3


async def test_other_headers_do_not_split_entries(accept_app: tuple[FastAPI, list[str]]) -> None:
    app, calls = accept_app
    async with client_for(app) as client:
        for n in range(4):
            headers = {"Accept": "text/csv", "User-Agent": f"agent {n}", "X-Request-Id": str(n)}
            assert (await client.get("/hello", headers=headers)).json()["call"] == 1
    assert calls == ["world"]


async def test_endpoint_sub_response_vary_is_merged(cached_here: CachedFactory) -> None:
    app = FastAPI()

    @app.get("/items")
    @vary_on_headers("Accept", "ACCEPT-LANGUAGE")
    @cached_here(ttl=60, key_builder=key_builder)
    async def items(response: Response) -> list[int]:
        response.headers["Vary"] = "Origin, accept"
        return [1, 2]

    async with client_for(app) as client:
        miss = await client.get("/items", headers={"Accept-Language": "fr"})
        hit = await client.get("/items", headers={"Accept-Language": "FR"})
    assert miss.json() == hit.json() == [1, 2]
    assert miss.headers["vary"] == "Origin, accept, ACCEPT-LANGUAGE"
    assert hit.headers["vary"] == "Accept, ACCEPT-LANGUAGE"  # the endpoint did not run


async def test_plain_starlette_route_returning_a_response(cached_here: CachedFactory) -> None:
    calls = []

    @vary_on_headers("Accept-Language")
    @cached_here(ttl=60, key_builder=key_builder, serializer=PickleSerializer())
    async def greet(request: Request) -> PlainTextResponse:
        language = request.headers.get("accept-language", "en")
        calls.append(language)
        return PlainTextResponse(
            "bonjour" if language.startswith("fr") else "hello", headers={"Vary": "Origin"}
        )

    app = Starlette(routes=[Route("/", greet)])
    async with client_for(app) as client:
        got = [await client.get("/", headers={"Accept-Language": lang})
               for lang in ("fr", "en", "fr", " FR ")]  # fmt: skip
    assert [r.text for r in got] == ["bonjour", "hello", "bonjour", "bonjour"]
    assert calls == ["fr", "en"]
    assert {r.headers["vary"] for r in got} == {"Origin, Accept-Language"}


async def test_concurrent_requests_never_see_each_others_entry(
    cached_here: CachedFactory,
) -> None:
    app = FastAPI()
    calls = []

    @app.get("/echo")
    @vary_on_headers("X-Tenant")
    @cached_here(ttl=60, key_builder=key_builder)
    async def echo(request: Request) -> dict[str, str]:
        calls.append(1)
        await asyncio.sleep(0.01)  # interleave the requests
        return {"tenant": request.headers.get("x-tenant", "")}

    tenants = [f"tenant-{n % 5}" for n in range(40)]
    async with client_for(app) as client:
        responses = await asyncio.gather(
            *(client.get("/echo", headers={"X-Tenant": t}) for t in tenants)
        )
        cold_calls = len(calls)
        again = [await client.get("/echo", headers={"X-Tenant": t}) for t in tenants[:5]]
    assert [r.json()["tenant"] for r in responses] == tenants
    assert [r.json()["tenant"] for r in again] == tenants[:5]
    assert 5 <= cold_calls <= 40  # plain cached: concurrent cold misses may each run
    assert len(calls) == cold_calls  # warm: every tenant hits its own entry


async def test_other_keys_built_during_the_call_are_not_varied(
    cached_here: CachedFactory,
) -> None:
    app = FastAPI()
    decorator = cached_here(ttl=60, key_builder=key_builder)

    @app.get("/side")
    @vary_on_headers("Accept")
    @decorator
    async def side() -> dict[str, int]:
        await decorator.cache.set("side-effect", 7)
        return {"ok": 1}

    async with client_for(app) as client:
        assert (await client.get("/side", headers={"Accept": "a/b"})).json() == {"ok": 1}
    assert await decorator.cache.get("side-effect") == 7


async def test_stacked_decorators_vary_on_both(cached_here: CachedFactory) -> None:
    app = FastAPI()
    calls = []

    @app.get("/both")
    @vary_on_headers("Accept")
    @vary_on_headers("Accept-Language")
    @cached_here(ttl=60, key_builder=key_builder)
    async def both() -> int:
        calls.append(1)
        return len(calls)

    pairs = [("a/b", "fr"), ("a/b", "en"), ("c/d", "fr"), ("a/b", "fr"), ("c/d", "fr")]
    async with client_for(app) as client:
        got = [await client.get("/both", headers={"Accept": a, "Accept-Language": lang})
               for a, lang in pairs]  # fmt: skip
    assert [r.json() for r in got] == [1, 2, 3, 1, 3]
    assert {r.headers["vary"] for r in got} == {"Accept-Language, Accept"}


async def test_huge_and_binary_header_values_give_valid_keys(
    accept_app: tuple[FastAPI, list[str]],
) -> None:
    app, calls = accept_app
    junk = [bytes(range(32, 256)) * 64 + bytes([n]) for n in (65, 66)]  # 14 KB, latin-1
    async with client_for(app) as client:
        for value in (*junk, *junk):
            response = await client.get("/hello", headers=[(b"accept", value)])
            assert response.status_code == 200
    assert len(calls) == 2


def test_misuse_is_reported_at_decoration_time() -> None:
    async def not_cached() -> None: ...

    with pytest.raises(TypeError, match="directly above @cached"):
        vary_on_headers("Accept")(not_cached)
    with pytest.raises(ValueError, match="at least one header"):
        vary_on_headers(" ")


async def test_call_without_a_request_runs_uncached_with_one_log_line(
    cache: BaseCache, caplog: pytest.LogCaptureFixture
) -> None:
    calls = []

    @vary_on_headers("Accept")
    @cached(cache=type(cache), key="fixed", **same_server(cache))
    async def compute(x: int) -> int:
        calls.append(x)
        return x * 2

    try:
        with caplog.at_level(logging.WARNING, logger="aiocache_ext"):
            assert [await compute(3) for _ in range(3)] == [6, 6, 6]
        assert calls == [3]  # plain cached still works; only the variation is skipped
        warnings = [r for r in caplog.records if "no-request-argument" in r.getMessage()]
        assert len(warnings) == 1
    finally:
        await compute.cache.close()


def test_stream_cached_above_vary_on_headers_fails_at_decoration() -> None:
    with pytest.raises(TypeError, match=r"would not vary.*HINT"):

        @stream_cached(cache=Cache.MEMORY)
        @vary_on_headers("Accept-Language")
        @stream_cached(cache=Cache.MEMORY)
        async def page(request: Request) -> Response:
            return Response("x")
