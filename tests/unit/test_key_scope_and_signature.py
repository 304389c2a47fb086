"""Two pure pieces under the decorators: the per-call key scope (which key gets the
vary part) and the signature FastAPI sees (which parameters are added)."""

from __future__ import annotations

import asyncio
import inspect

from aiocache import Cache
from starlette.requests import Request
from starlette.responses import Response

from aiocache_ext.decorators._key_scope import install, key_scope, scoped_key, varied_headers
from aiocache_ext.decorators._signature import EndpointSignature, take, take_request


def test_only_the_calls_own_key_gets_the_scope_part() -> None:
    cache, other = Cache(Cache.MEMORY), Cache(Cache.MEMORY)
    install(cache)
    assert cache.build_key("k") == "k"  # outside a scope: untouched
    with key_scope(cache, "|v1", ("accept",)):
        assert cache.build_key("k") == "k|v1"  # the first key built is the call's own
        assert cache.build_key("k") == "k|v1"
        assert cache.build_key("another") == "another"  # the endpoint's other cache calls
        assert scoped_key(other, "k") == "k"  # another cache: untouched
        assert varied_headers(cache) == ("accept",)
        assert varied_headers(other) == ()
        with key_scope(cache, "|v2", ("accept-language",)):  # nested: both parts
            assert cache.build_key("inner") == "inner|v1|v2"
            assert varied_headers(cache) == ("accept", "accept-language")
    assert cache.build_key("k") == "k"


async def test_concurrent_calls_never_see_each_others_part() -> None:
    cache = Cache(Cache.MEMORY)
    install(cache)

    async def call(part: str) -> str:
        with key_scope(cache, part):
            await asyncio.sleep(0)
            built: str = cache.build_key("k")
            return built

    assert await asyncio.gather(*(call(f"|{n}") for n in range(20))) == [
        f"k|{n}" for n in range(20)
    ]


def test_install_wraps_build_key_once() -> None:
    cache = Cache(Cache.MEMORY)
    install(cache)
    wrapped = cache.build_key
    install(cache)
    assert cache.build_key is wrapped


async def endpoint(item: int, request: Request, q: str = "", **extra: object) -> None:
    """Annotations are strings here (``from __future__ import annotations``)."""


async def bare(item: int) -> None: ...


def test_the_endpoints_own_request_is_used_and_annotations_are_resolved() -> None:
    signature = EndpointSignature(endpoint)
    assert signature.parameter_for(Request, "cache_request") == ("request", False)
    assert signature.parameter_for(Response, "cache_response") == ("cache_response", True)
    params = signature.signature().parameters
    assert list(params) == ["item", "request", "q", "cache_response", "extra"]  # **extra last
    assert params["request"].annotation is Request  # resolved in the endpoint's module
    assert params["item"].annotation is int
    assert params["cache_response"].kind is inspect.Parameter.KEYWORD_ONLY


def test_added_parameters_are_taken_away_and_own_ones_left() -> None:
    signature = EndpointSignature(bare)
    name, added = signature.parameter_for(Request, "cache_request")
    assert (name, added) == ("cache_request", True)
    request = Request({"type": "http", "method": "GET", "path": "/", "headers": []})
    kwargs: dict[str, object] = {"item": 1, "cache_request": request}
    assert take_request((), kwargs, name, added) is request
    assert kwargs == {"item": 1}  # the endpoint never sees it
    own: dict[str, object] = {"request": request}
    assert take(own, "request", False) is request
    assert own == {"request": request}
    # A plain Starlette route is called with the request as its argument.
    assert take_request((request,), {}, "cache_request", True) is request
