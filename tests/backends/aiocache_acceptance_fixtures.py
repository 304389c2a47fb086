"""Copied as ``conftest.py`` over aiocache's own acceptance fixtures (see
``test_aiocache_acceptance.py``): the same fixture names, with the Redis and memcached
caches replaced by a ``FallbackCache`` over the primary named in the environment, which
is up or has nothing listening on its port. Not collected by our own suite."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import pytest
from aiocache import Cache, caches
from aiocache.base import BaseCache

from aiocache_ext import FallbackCache

from ..utils import KEY_LOCK, Keys  # type: ignore[import-not-found]  # aiocache's tests/utils.py

KIND = os.environ["AIOCACHE_ACCEPTANCE_PRIMARY"]  # "redis" or "memcached"
PORT = int(os.environ["AIOCACHE_ACCEPTANCE_PORT"])


@pytest.fixture(autouse=True)
def reset_caches() -> None:
    caches._caches = {}
    caches.set_config(
        {"default": {"cache": "aiocache.SimpleMemoryCache",
                     "serializer": {"class": "aiocache.serializers.NullSerializer"}}}
    )  # fmt: skip


async def _fallback_cache() -> AsyncIterator[BaseCache]:
    kind = Cache.REDIS if KIND == "redis" else Cache.MEMCACHED
    primary = Cache(kind, endpoint="127.0.0.1", port=PORT)
    # A generous timeout: these tests check aiocache's API, and a busy machine must not
    # turn a slow answer into an outage (the memory fallback answers some differently).
    async with FallbackCache(primary=primary, namespace="test", primary_timeout=2.0) as cache:
        yield cache
        await asyncio.gather(*(cache.delete(k) for k in (*Keys, KEY_LOCK)))


redis_cache = pytest.fixture(_fallback_cache)
memcached_cache = pytest.fixture(_fallback_cache)


@pytest.fixture(
    params=[pytest.param("redis_cache", marks=pytest.mark.redis),
            pytest.param("memcached_cache", marks=pytest.mark.memcached)]
)  # fmt: skip
def cache(request: pytest.FixtureRequest) -> BaseCache:
    found: BaseCache = request.getfixturevalue(request.param)
    return found
