"""CompressionSerializer against real memory, Redis and memcached caches."""

from __future__ import annotations

import copy
import os
import pickle
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import aiomcache
import pandas as pd
import pytest
from aiocache import cached, caches
from aiocache.base import BaseCache
from aiocache.serializers import BaseSerializer, PickleSerializer

from aiocache_ext import Codec, CompressionSerializer

from ..conftest import cache_config
from ..helpers import same_server

CODECS = [c.name.lower() for c in Codec if c is not Codec.NONE]
MEMCACHED_ITEM_LIMIT = 1024 * 1024


class SeedSerializer(BaseSerializer):  # type: ignore[misc]
    """The serializer from our users' notes: ``zlib.compress(pickle.dumps(v))``."""

    DEFAULT_ENCODING = None

    def dumps(self, value: Any) -> bytes:
        return zlib.compress(pickle.dumps(value))

    def loads(self, value: bytes | None) -> Any:
        return None if value is None else pickle.loads(zlib.decompress(value))


def frame(rows: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": range(rows),
            "price": [i * 0.25 for i in range(rows)],
            "city": [("Lyon", "Oslo", "Kyiv", "Lima")[i % 4] for i in range(rows)],
        }
    )


@pytest.mark.parametrize("codec", CODECS)
async def test_dataframe_round_trips_with_every_codec(
    cache_factory: Callable[..., BaseCache], codec: str
) -> None:
    cache = cache_factory(serializer=CompressionSerializer(codec=codec), namespace="df")
    df = frame(20_000)
    assert await cache.set("frame", df)
    got = await cache.get("frame")
    pd.testing.assert_frame_equal(got, df)
    assert await cache.get("absent") is None


async def test_any_codec_is_read_by_any_configuration(cache: BaseCache) -> None:
    value = {"payload": list(range(5000)), "text": "é" * 3000}
    for codec in CODECS:
        cache.serializer = CompressionSerializer(codec=codec, level=1)
        assert await cache.set(f"by-{codec}", value)
    cache.serializer = CompressionSerializer(inner="pickle", codec="lz4")
    for codec in CODECS:
        assert await cache.get(f"by-{codec}") == value


async def test_switching_serializer_on_a_live_cache_needs_no_flush(cache: BaseCache) -> None:
    value = {"rows": [[i, str(i)] for i in range(2000)]}
    cache.serializer = PickleSerializer()
    assert await cache.set("old-pickle", value)
    cache.serializer = SeedSerializer()
    assert await cache.set("old-seed", value)
    cache.serializer = CompressionSerializer()
    assert await cache.get("old-pickle") == value
    assert await cache.get("old-seed") == value


async def test_signed_values_on_a_shared_backend(cache: BaseCache) -> None:
    cache.serializer = CompressionSerializer(secret="k1")
    assert await cache.set("good", {"a": 1})
    assert await cache.get("good") == {"a": 1}
    cache.serializer = PickleSerializer()
    assert await cache.set("planted", {"a": 2})
    cache.serializer = CompressionSerializer(secret="k1")
    with pytest.raises(ValueError, match="unsigned"):
        await cache.get("planted")


async def test_unreadable_entry_is_a_miss_for_cached(cache: BaseCache) -> None:
    calls = []

    @cached(
        key="report",
        namespace="calls",
        cache=type(cache),
        serializer=CompressionSerializer(),
        **same_server(cache),
    )
    async def report() -> dict[str, int]:
        calls.append(1)
        return {"total": 42}

    route_cache: BaseCache = report.cache
    try:
        for garbage in (os.urandom(300), b"\xc1E\x01\x01\x00\x00\x00\x10\x00junk"):
            route_cache.serializer = _Raw()
            assert await route_cache.set("report", garbage)
            route_cache.serializer = CompressionSerializer()
            assert await report() == {"total": 42}
        assert len(calls) == 2
        assert await report() == {"total": 42}
        assert len(calls) == 2
    finally:
        await route_cache.close()


class _Raw(BaseSerializer):  # type: ignore[misc]
    """Writes bytes as they are, to plant garbage."""

    DEFAULT_ENCODING = None

    def dumps(self, value: Any) -> Any:
        return value

    def loads(self, value: Any) -> Any:
        return value


@pytest.fixture
def restore_caches_config() -> Iterator[None]:
    saved = copy.deepcopy(caches.get_config())
    yield
    caches.set_config(saved)


@pytest.mark.usefixtures("restore_caches_config")
async def test_built_from_an_aiocache_config_dict(
    backend: str, request: pytest.FixtureRequest
) -> None:
    config = {**cache_config(backend, request), "namespace": "cfg"}
    config["serializer"] = {
        "class": "aiocache_ext.CompressionSerializer",
        "codec": "zstd",
        "level": 3,
        "min_size": "64",
        "inner": "aiocache.serializers.JsonSerializer",
    }
    caches.set_config({"default": config})
    cache = caches.create("default")
    try:
        assert isinstance(cache.serializer, CompressionSerializer)
        assert cache.serializer.codec is Codec.ZSTD
        assert await cache.set("doc", {"k": ["v"] * 100})
        assert await cache.get("doc") == {"k": ["v"] * 100}
    finally:
        await cache.close()


@pytest.mark.memcached
async def test_value_over_memcached_item_limit_fits_once_compressed(
    memcached_server: Any,
) -> None:
    from aiocache import Cache

    value = frame(150_000)
    assert len(pickle.dumps(value)) > 1.2 * MEMCACHED_ITEM_LIMIT
    options = {"endpoint": memcached_server.host, "port": memcached_server.port}
    plain = Cache(Cache.MEMCACHED, serializer=PickleSerializer(), **options)
    compressed = Cache(Cache.MEMCACHED, serializer=CompressionSerializer(codec="zlib"), **options)
    try:
        assert len(compressed.serializer.dumps(value)) < MEMCACHED_ITEM_LIMIT
        with pytest.raises(aiomcache.ClientException, match="object too large for cache"):
            await plain.set("frame", value)
        assert await compressed.set("frame", value)
        pd.testing.assert_frame_equal(await compressed.get("frame"), value)
    finally:
        await plain.close()
        await compressed.close()
