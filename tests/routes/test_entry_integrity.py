"""What a replay may deliver (SPEC §9): only the bytes of the write its entry names, only
entries written by someone holding the secret, and only what the endpoint declared."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiocache.base import BaseCache
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from aiocache_ext import CompressionSerializer, stream_cached
from aiocache_ext.key_parts import host_suffix
from aiocache_ext.streaming.format import Manifest
from aiocache_ext.streaming.integrity import Integrity
from aiocache_ext.streaming.store import SegmentStore

from ..conftest import make_cache
from ..helpers import client_for, served

KEY = "entry"
SEGMENT = 1000
BODY = b"".join(bytes([65 + i]) * SEGMENT for i in range(6))  # six distinct segments


class Route_:
    """A cached route whose response the test sets; counts calls."""

    def __init__(self, cache: BaseCache, response: Any = None, **options: Any) -> None:
        self.calls = 0
        self.response = response or (lambda: streamed([BODY[:2500], BODY[2500:]]))
        options.setdefault("key_host", False)  # the tests reach the entry under KEY

        @stream_cached(cache=cache, ttl=60, key=KEY, segment_size=SEGMENT, **options)
        async def route(request: Request) -> Any:
            self.calls += 1
            return self.response()

        self.app = Starlette(routes=[Route("/", route)])
        self.cache = route.cache  # type: ignore[attr-defined]


def streamed(chunks: list[bytes], **options: Any) -> StreamingResponse:
    async def body() -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield chunk

    return StreamingResponse(body(), **options)


async def segments(store: SegmentStore) -> tuple[Manifest, list[bytes]]:
    manifest = await store.get_entry(KEY)
    assert isinstance(manifest, Manifest)
    keys = [manifest.segment_key(KEY, i) for i in range(manifest.segments)]
    values = await store.get_segments(keys)
    assert all(v is not None for v in values)
    return manifest, [v for v in values if v is not None]


async def put_segment(store: SegmentStore, manifest: Manifest, index: int, data: bytes) -> None:
    await store.put_segment(manifest.segment_key(KEY, index), data, 60)


async def test_swapped_first_segments_are_a_miss_before_the_first_byte(cache: BaseCache) -> None:
    route = Route_(cache)
    async with served(route.app) as client:
        await client.get("/")
        store = SegmentStore(cache)
        manifest, stored = await segments(store)
        await put_segment(store, manifest, 0, stored[1])
        await put_segment(store, manifest, 1, stored[0])
        again = await client.get("/")
    assert again.content == BODY
    assert again.headers["x-cache"] == "MISS"
    assert route.calls == 2


async def test_a_replaced_later_segment_aborts_the_transfer(cache: BaseCache) -> None:
    route = Route_(cache, read_batch=1)
    async with served(route.app) as client:
        await client.get("/")
        store = SegmentStore(cache)
        manifest, _ = await segments(store)
        await put_segment(store, manifest, 4, b"Z" * SEGMENT)  # same length, other bytes
        with pytest.raises(httpx.RemoteProtocolError):
            await client.get("/")
        after = await client.get("/")  # the broken entry was dropped
    assert after.content == BODY
    assert route.calls == 2


async def test_a_broken_entry_is_dropped_in_the_decorators_namespace(cache: BaseCache) -> None:
    """A ready cache with a namespace of its own, and another one named by the decorator:
    the broken manifest goes from where the decorator stored it."""
    route = Route_(cache, namespace="routes")
    async with served(route.app) as client:
        await client.get("/")
        store = SegmentStore(cache, namespace="routes")
        manifest, _ = await segments(store)
        await put_segment(store, manifest, 0, b"Z" * SEGMENT)
        route.response = lambda: PlainTextResponse("busy", headers={"cache-control": "no-store"})
        miss = await client.get("/")
        assert miss.text == "busy"
        assert await store.get_entry(KEY) is None


async def test_entries_written_without_the_secret_are_never_served(cache: BaseCache) -> None:
    route = Route_(cache, secret="s3cret")
    async with served(route.app) as client:
        first = await client.get("/")
        store = SegmentStore(cache)  # what anyone without the secret can write
        for forger in (store, SegmentStore(cache, Integrity(b"guess"))):
            manifest = Manifest(
                status=200, headers=((b"content-type", b"text/plain"),), size=6, segment_size=6,
                write_id="evil", etag='"evil"', stored_at=time.time(), expires_at=None,
                inline=b"forged",
            )  # fmt: skip
            await forger.put_record(KEY, manifest, 60)
            served_after = await client.get("/")
            assert served_after.content == BODY
            assert served_after.headers["x-cache"] == "MISS"
        hit = await client.get("/")
    assert first.content == hit.content == BODY
    assert hit.headers["x-cache"] == "HIT"
    assert route.calls == 3


async def test_a_sealed_entry_copied_to_another_key_is_refused(cache: BaseCache) -> None:
    other = Route_(cache, secret=b"k", key_host=True)  # same KEY, plus the origin
    route = Route_(cache, secret=b"k")
    async with served(route.app) as client:
        await client.get("/")
    raw = await cache.get(KEY, loads_fn=lambda v: v)
    assert raw is not None
    async with served(other.app) as client:
        await client.get("/")  # fills its own key
        origin = f"http://{client.base_url.netloc.decode()}"
        await cache.set(KEY + host_suffix(origin), raw, ttl=60, dumps_fn=lambda v: v)  # copied
        copied = await client.get("/")
    assert copied.headers["x-cache"] == "MISS"
    assert other.calls == 2


async def test_compression_serializer_secret_seals_stream_entries(
    backend: str, request: pytest.FixtureRequest
) -> None:
    signed = make_cache(
        backend, request, namespace="t", serializer=CompressionSerializer(secret="k")
    )
    try:
        route = Route_(signed)
        async with client_for(route.app) as client:
            await client.get("/")
            raw = await signed.get(KEY, loads_fn=lambda v: v)
            assert (raw.decode() if isinstance(raw, bytes) else raw).startswith(
                "aiocache_ext.stream/4 mac="
            )
            await SegmentStore(signed).put_record(
                KEY, (await segments(SegmentStore(signed, Integrity(b"k"))))[0], 60
            )
            unsigned = await client.get("/")
        assert unsigned.headers["x-cache"] == "MISS"
        assert unsigned.content == BODY
    finally:
        await signed.close()


async def test_plain_values_need_a_signing_serializer_under_a_secret(cache: BaseCache) -> None:
    calls = 0

    @stream_cached(cache=cache, ttl=60, key=KEY, key_host=False, secret="k")
    async def values(request: Request) -> Any:
        nonlocal calls
        calls += 1
        return {"n": calls}

    app = FastAPI()
    app.add_api_route("/", values)
    async with client_for(app) as client:
        await cache.set(KEY, {"n": "forged"}, ttl=60)
        assert (await client.get("/")).json() == {"n": 1}
        assert (await client.get("/")).json() == {"n": 2}  # not stored: could not be signed


async def test_replayed_204_has_no_content_length(cache: BaseCache) -> None:
    route = Route_(cache, response=lambda: Response(status_code=204), statuses=(200, 204))
    async with served(route.app) as client:
        miss, hit = await client.get("/"), await client.get("/")
    assert (miss.status_code, hit.status_code) == (204, 204)
    assert hit.headers["x-cache"] == "HIT"
    assert "content-length" not in hit.headers
    assert hit.content == b""


@pytest.mark.parametrize("declared", [len(BODY) + 10, len(BODY) - 10])
async def test_a_body_that_differs_from_its_content_length_is_not_stored(
    cache: BaseCache, declared: int
) -> None:
    def wrong() -> Response:
        return streamed([BODY], headers={"Content-Length": str(declared)})

    route = Route_(cache, response=wrong)
    async with client_for(route.app) as client:  # in-process: uvicorn itself refuses it
        await client.get("/")
        await client.get("/")
    assert route.calls == 2
    assert await SegmentStore(cache).get_entry(KEY) is None


@pytest.mark.parametrize(
    ("cache_control", "lifetime"), [("s-maxage=2, max-age=600", 2), ("max-age=3", 3)]
)
async def test_endpoint_freshness_caps_the_entry(
    cache: BaseCache, cache_control: str, lifetime: int
) -> None:
    route = Route_(
        cache, response=lambda: PlainTextResponse("x", headers={"Cache-Control": cache_control})
    )
    async with client_for(route.app) as client:
        await client.get("/")
    manifest = await SegmentStore(cache).get_entry(KEY)
    assert isinstance(manifest, Manifest) and manifest.expires_at is not None
    assert manifest.expires_at - manifest.stored_at <= lifetime


async def test_a_known_body_gets_its_etag_on_the_miss(cache: BaseCache) -> None:
    route = Route_(cache, response=lambda: PlainTextResponse("known body"))
    async with served(route.app) as client:
        miss = await client.get("/")
        reload = await client.get("/", headers={"If-None-Match": miss.headers["etag"]})
    assert reload.status_code == 304
    assert route.calls == 1
