"""Two pure pieces under the decorators: the per-call key scope (which key gets the
vary part) and the signature FastAPI sees (which parameters are added)."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

from aiocache import Cache, cached
from starlette.requests import Request
from starlette.responses import Response

from aiocache_ext.decorators._key_scope import adopt, decorator_of, key_scope, varied_headers
from aiocache_ext.decorators._signature import EndpointSignature, take, take_request


async def route() -> None: ...


def keyed(key: str, cache: object = Cache.MEMORY, namespace: str | None = None) -> Any:
    """An aiocache ``cached`` decorator object whose key builder returns ``key``."""
    return cached(cache=cache, namespace=namespace, key_builder=lambda f, *a, **k: key)


def test_the_decorator_behind_a_route_is_found() -> None:
    decorator = keyed("k")
    assert decorator_of(decorator(route)) is decorator  # aiocache's own wrapper
    assert decorator_of(route) is None


def test_only_the_adopted_decorators_key_gets_the_scope_part() -> None:
    decorator, other = keyed("k"), keyed("k")
    decorator(route)
    other(route)
    build_key = decorator.cache.build_key
    adopt(decorator)
    assert decorator.get_cache_key(route, (), {}) == "k"  # outside a scope: untouched
    with key_scope(decorator, "|v1", ("accept",)):
        assert decorator.get_cache_key(route, (), {}) == "k|v1"
        assert other.get_cache_key(route, (), {}) == "k"
        assert varied_headers(decorator) == ("accept",)
        assert varied_headers(other) == ()
        with key_scope(decorator, "|v2", ("accept-language",)):  # nested: both parts
            assert decorator.get_cache_key(route, (), {}) == "k|v1|v2"
            assert varied_headers(decorator) == ("accept", "accept-language")
    assert decorator.get_cache_key(route, (), {}) == "k"
    assert decorator.cache.build_key == build_key  # the cache, maybe shared: untouched


async def test_keys_are_fitted_to_the_backends_limit_with_the_namespace() -> None:
    # async: aiomcache's client needs an event loop when it is built (Python 3.9)
    long_key = "x" * 400
    on_memcached = keyed(long_key, Cache.MEMCACHED, namespace="n" * 30)
    on_redis = keyed(long_key, Cache.REDIS, namespace="n" * 30)
    for decorator in (on_memcached, on_redis):
        decorator(route)
        adopt(decorator)
    with key_scope(on_memcached, "|v", ()):
        fitted = on_memcached.get_cache_key(route, (), {})
    assert len(on_memcached.cache.build_key(fitted)) == 250
    assert fitted.startswith("x" * 100)
    assert on_redis.get_cache_key(route, (), {}) == long_key  # Redis takes any length


async def test_concurrent_calls_never_see_each_others_part() -> None:
    decorator = keyed("k")
    decorator(route)
    adopt(decorator)

    async def call(part: str) -> str:
        with key_scope(decorator, part, ()):
            await asyncio.sleep(0)
            built: str = decorator.get_cache_key(route, (), {})
            return built

    assert await asyncio.gather(*(call(f"|{n}") for n in range(20))) == [
        f"k|{n}" for n in range(20)
    ]


def test_adopt_wraps_once() -> None:
    decorator = keyed("k")
    decorator(route)
    adopt(decorator)
    wrapped = decorator.get_cache_key
    adopt(decorator)
    assert decorator.get_cache_key is wrapped


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
