"""stream_cached through real FastAPI / Starlette apps, on memory, Redis and memcached."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import redis
from aiocache.base import BaseCache
from aiocache.serializers import JsonSerializer, PickleSerializer
from fastapi import BackgroundTasks, FastAPI
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from aiocache_ext import CompressionSerializer, key_builder, stream_cached, vary_on_headers
from aiocache_ext.streaming import writer as writer_module
from aiocache_ext.streaming.format import Manifest, segment_key
from aiocache_ext.streaming.store import SegmentStore

from ..conftest import cache_config, make_cache
from ..helpers import client_for, leaf_errors

KiB, MiB = 1024, 1024 * 1024
KEY = "entry"


@pytest.fixture(autouse=True)
def fixed_write_ids(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Write ids w0, w1, ... so a test can look for the segments a write left behind."""
    issued: list[str] = []

    def next_id() -> str:
        issued.append(f"w{len(issued)}")
        return issued[-1]

    monkeypatch.setattr(writer_module, "new_write_id", next_id)
    return issued


class Endpoint:
    """A route body the tests control: counts calls, streams given chunks."""

    def __init__(self, chunks: list[bytes], **response: Any) -> None:
        self.chunks = chunks
        self.response = response
        self.calls = 0
        self.delay = 0.0
        self.fail_after: int | None = None

    async def body(self) -> AsyncIterator[bytes]:
        for index, chunk in enumerate(self.chunks):
            if self.fail_after is not None and index == self.fail_after:
                raise RuntimeError("generator failed")
            if self.delay:
                await asyncio.sleep(self.delay)
            yield chunk

    def __call__(self) -> StreamingResponse:
        self.calls += 1
        return StreamingResponse(self.body(), **self.response)


def app_for(cache: BaseCache, endpoint: Endpoint, **options: Any) -> Starlette:
    """A Starlette app whose GET / streams ``endpoint`` under ``stream_cached``."""
    options.setdefault("key", KEY)
    options.setdefault("key_host", False)  # the tests read the entry under KEY itself

    @stream_cached(cache=cache, ttl=options.pop("ttl", 60), **options)
    async def route(request: Request) -> Response:
        return endpoint()

    return Starlette(routes=[Route("/", route, methods=["GET", "POST"])])


async def leftovers(cache: BaseCache, write_ids: list[str], count: int = 64) -> list[str]:
    """Keys of the entry (manifest, segments of every write) still in the backend."""
    store = SegmentStore(cache)
    keys = [segment_key(KEY, w, i) for w in write_ids for i in range(count)]
    values = await store.get_segments(keys)
    found = [k for k, v in zip(keys, values) if v is not None]
    if await store.get_entry(KEY) is not None:
        found.append(KEY)
    return found


async def test_headers_and_body_replay_exactly(cache: BaseCache) -> None:
    odd = [(b"x-odd", b"a;b:c=d,e"), (b"x-multi", b"one"), (b"x-multi", b"two"),
           (b"x-latin", bytes(range(0xA0, 0xFF)))]  # fmt: skip
    body = b"id,name\n" + "1,é\n".encode() + b"2,x\n" * 1000

    async def make() -> Response:
        response = StreamingResponse(
            iter([body[:8], body[8:14], body[14:]]), media_type="text/csv; charset=utf-8"
        )
        response.raw_headers.extend(odd)
        return response

    async with client_for(Starlette(routes=[Route("/", _route(cache, make))])) as client:
        miss, hit = await client.get("/"), await client.get("/")
    assert miss.content == hit.content == body
    assert (miss.headers["x-cache"], hit.headers["x-cache"]) == ("MISS", "HIT")
    for response in (miss, hit):
        assert response.headers["content-type"] == "text/csv; charset=utf-8"
        raw = [(k.lower(), v) for k, v in response.headers.raw]
        assert [h for h in raw if h[0] in {b"x-odd", b"x-multi", b"x-latin"}] == odd
    assert hit.headers["content-length"] == str(len(body))
    assert hit.headers["etag"] == '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'
    assert int(hit.headers["age"]) >= 0


def _route(cache: BaseCache, make: Callable[[], Awaitable[Response]], **options: Any) -> Any:
    options.setdefault("key_host", False)  # the tests read the entry under KEY itself

    @stream_cached(cache=cache, ttl=60, key=KEY, **options)
    async def route(request: Request) -> Response:
        return await make()

    return route


@pytest.mark.parametrize(
    "chunks", [[b"a", b"", b"", b"b", b""], [b"", b""], [], ["text ", "chunks"]], ids=str
)
async def test_empty_chunks_never_end_a_replay(cache: BaseCache, chunks: list[Any]) -> None:
    endpoint = Endpoint(chunks)
    async with client_for(app_for(cache, endpoint, segment_size=1)) as client:
        miss, hit = await client.get("/"), await client.get("/")
    expected = b"".join(c.encode() if isinstance(c, str) else c for c in chunks)
    assert miss.content == hit.content == expected
    assert hit.headers["x-cache"] == "HIT"
    assert hit.headers["content-length"] == str(len(expected))
    assert endpoint.calls == 1


async def test_generator_failure_stores_nothing(
    cache: BaseCache, fixed_write_ids: list[str]
) -> None:
    endpoint = Endpoint([b"x" * 100] * 10)
    endpoint.fail_after = 6
    async with client_for(app_for(cache, endpoint, segment_size=64)) as client:
        with pytest.raises(Exception) as raised:  # noqa: PT011 - a group on Starlette < 0.41
            await client.get("/")
        assert [str(e) for e in leaf_errors(raised.value)] == ["generator failed"]
        assert await leftovers(cache, fixed_write_ids) == []
        endpoint.fail_after = None
        response = await client.get("/")
    assert response.headers["x-cache"] == "MISS"
    assert response.content == b"x" * 1000
    assert endpoint.calls == 2


async def drive(app: Any, disconnect: str, after_chunks: int) -> list[dict[str, Any]]:
    return await drive_path(app, "/", disconnect, after_chunks)


async def drive_path(
    app: Any, path: str, disconnect: str, after_chunks: int
) -> list[dict[str, Any]]:
    """Run one GET at the ASGI level; the client goes away after ``after_chunks`` body
    messages, either by ``http.disconnect`` (ASGI < 2.4) or by ``send`` failing (2.4)."""
    sent: list[dict[str, Any]] = []
    gone = asyncio.Event()
    version = "2.4" if disconnect == "send-fails" else "2.3"
    scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": version},
             "http_version": "1.1", "method": "GET", "scheme": "http", "path": path,
             "raw_path": path.encode(), "query_string": b"", "headers": [],
             "server": ("t", 80)}  # fmt: skip
    requested = False

    async def receive() -> dict[str, Any]:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if gone.is_set() and disconnect == "send-fails":
            raise OSError("connection reset by peer")
        sent.append(message)
        if sum(m["type"] == "http.response.body" for m in sent) >= after_chunks:
            gone.set()

    # Starlette raises these when send fails; a server then drops the connection.
    with contextlib.suppress(OSError, ClientDisconnect):
        await asyncio.wait_for(app(scope, receive, send), 10)
    return sent


@pytest.mark.parametrize("disconnect", ["receive-disconnect", "send-fails"])
async def test_client_disconnect_stores_nothing(
    cache: BaseCache, fixed_write_ids: list[str], disconnect: str
) -> None:
    endpoint = Endpoint([b"y" * 100] * 20)
    endpoint.delay = 0.005
    app = app_for(cache, endpoint, segment_size=64)
    sent = await drive(app, disconnect, after_chunks=3)
    assert not any(m.get("more_body") is False for m in sent)  # the client did not get it all
    assert await leftovers(cache, fixed_write_ids) == []
    async with client_for(app) as client:
        response = await client.get("/")
    assert response.headers["x-cache"] == "MISS"
    assert response.content == b"y" * 2000


async def test_body_over_max_size_is_sent_whole_but_not_stored(
    cache: BaseCache, fixed_write_ids: list[str]
) -> None:
    endpoint = Endpoint([b"z" * 1000] * 5)
    async with client_for(app_for(cache, endpoint, segment_size=512, max_size=4000)) as client:
        first, second = await client.get("/"), await client.get("/")
    assert first.content == second.content == b"z" * 5000
    assert second.headers["x-cache"] == "MISS"
    assert endpoint.calls == 2
    assert await leftovers(cache, fixed_write_ids) == []


async def test_three_mib_body_in_default_segments(cache: BaseCache) -> None:
    body = bytes(range(256)) * (3 * MiB // 256)
    endpoint = Endpoint([body[i : i + 100_000] for i in range(0, len(body), 100_000)])
    async with client_for(app_for(cache, endpoint)) as client:
        miss, hit = await client.get("/"), await client.get("/")
    assert miss.content == hit.content == body
    assert hit.headers["x-cache"] == "HIT"
    manifest = await SegmentStore(cache).get_entry(KEY)
    assert isinstance(manifest, Manifest)
    assert manifest.segments == 12  # 256 KiB each, under memcached's 1 MB items


async def test_missing_first_segment_is_a_miss(cache: BaseCache) -> None:
    endpoint = Endpoint([b"q" * 1000])
    async with client_for(app_for(cache, endpoint, segment_size=100)) as client:
        await client.get("/")
        manifest = await SegmentStore(cache).get_entry(KEY)
        await SegmentStore(cache).delete([manifest.segment_key(KEY, 0)])
        response = await client.get("/")
        again = await client.get("/")
    assert response.headers["x-cache"] == "MISS"
    assert response.content == b"q" * 1000
    assert again.headers["x-cache"] == "HIT"
    assert endpoint.calls == 2


async def test_missing_later_segment_aborts_the_replay_and_drops_the_entry(
    cache: BaseCache,
) -> None:
    endpoint = Endpoint([b"r" * 5000])
    async with client_for(app_for(cache, endpoint, segment_size=100, read_batch=4)) as client:
        await client.get("/")
        manifest = await SegmentStore(cache).get_entry(KEY)
        await SegmentStore(cache).delete([manifest.segment_key(KEY, 30)])
        with pytest.raises(Exception, match="segment 30"):
            await client.get("/")  # never a short body that looks complete
        response = await client.get("/")
    assert response.headers["x-cache"] == "MISS"
    assert response.content == b"r" * 5000
    assert endpoint.calls == 2


async def test_concurrent_cold_requests_call_the_endpoint_once(cache: BaseCache) -> None:
    endpoint = Endpoint([b"c" * 1000] * 8)
    endpoint.delay = 0.01
    async with client_for(app_for(cache, endpoint, segment_size=4096)) as client:
        responses = await asyncio.gather(*(client.get("/") for _ in range(64)))
    assert endpoint.calls == 1
    assert all(r.content == b"c" * 8000 for r in responses)
    assert sorted(r.headers["x-cache"] for r in responses) == ["HIT"] * 63 + ["MISS"]


async def test_if_none_match_gets_304_without_reading_a_segment(cache: BaseCache) -> None:
    endpoint = Endpoint([b"etag me"])
    async with client_for(app_for(cache, endpoint)) as client:
        await client.get("/")
        hit = await client.get("/")
        manifest = await SegmentStore(cache).get_entry(KEY)
        await SegmentStore(cache).delete([manifest.segment_key(KEY, 0)])  # 304 must not need it
        etag = hit.headers["etag"]
        for header in (etag, f"W/{etag}", f'"nope", {etag}', "*"):
            response = await client.get("/", headers={"If-None-Match": header})
            assert response.status_code == 304
            assert response.content == b""
            assert response.headers["etag"] == etag
            assert (
                "content-length" not in response.headers
                or response.headers["content-length"] == "0"
            )
        other = await client.get("/", headers={"If-None-Match": '"nope"'})
    assert other.status_code == 200  # the broken entry is a miss, never a wrong body
    assert other.content == b"etag me"


async def test_head_is_answered_from_the_get_entry(cache: BaseCache) -> None:
    endpoint = Endpoint([b"head body"])
    async with client_for(app_for(cache, endpoint)) as client:
        await client.get("/")
        head = await client.head("/")
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["x-cache"] == "HIT"
    assert head.headers["content-length"] == "9"
    assert endpoint.calls == 1


@pytest.mark.parametrize(
    ("request_cc", "reads", "writes"),
    [("no-store", False, False), ("NO-STORE, max-age=5", False, False), ("no-cache", False, True),
     ("max-age = 0", False, True), ("max-age=60", True, True)],
)  # fmt: skip
async def test_request_cache_control(
    cache: BaseCache, request_cc: str, reads: bool, writes: bool
) -> None:
    endpoint = Endpoint([b"v1"])
    async with client_for(app_for(cache, endpoint, honor_request_cache_control=True)) as client:
        await client.get("/")
        endpoint.chunks = [b"v2"]
        asked = await client.get("/", headers={"Cache-Control": request_cc})
        after = await client.get("/")
    assert asked.content == (b"v1" if reads else b"v2")
    assert asked.headers["x-cache"] == ("HIT" if reads else "MISS")
    assert after.content == (b"v2" if writes and not reads else b"v1")


async def test_only_get_and_head_are_cached(cache: BaseCache) -> None:
    endpoint = Endpoint([b"post"])
    async with client_for(app_for(cache, endpoint)) as client:
        for _ in range(3):
            assert (await client.post("/")).headers["x-cache"] == "MISS"
        assert (await client.get("/")).headers["x-cache"] == "MISS"
    assert endpoint.calls == 4


async def test_authorization_bypasses_unless_opted_in_or_varied(cache: BaseCache) -> None:
    endpoint = Endpoint([b"secret"])
    auth = {"Authorization": "Bearer a"}
    async with client_for(app_for(cache, endpoint)) as client:
        assert [(await client.get("/", headers=auth)).headers["x-cache"] for _ in range(2)] == [
            "MISS", "MISS"]  # fmt: skip
    async with client_for(app_for(cache, endpoint, allow_authorized=True, key="opt-in")) as client:
        assert [(await client.get("/", headers=auth)).headers["x-cache"] for _ in range(2)] == [
            "MISS", "HIT"]  # fmt: skip

    @vary_on_headers("Authorization")
    @stream_cached(cache=cache, ttl=60, key="varied")
    async def varied(request: Request) -> Response:
        return PlainTextResponse(request.headers["authorization"])

    async with client_for(Starlette(routes=[Route("/", varied)])) as client:
        got = [await client.get("/", headers={"Authorization": t}) for t in ("a", "b", "a")]
    assert [(r.text, r.headers["x-cache"]) for r in got] == [
        ("a", "MISS"),
        ("b", "MISS"),
        ("a", "HIT"),
    ]


@pytest.mark.parametrize(
    ("response", "options", "stored"),
    [
        (PlainTextResponse("x", headers={"Set-Cookie": "s=1"}), {}, False),
        (PlainTextResponse("x", headers={"Set-Cookie": "s=1"}), {"allow_set_cookie": True}, True),
        (PlainTextResponse("x", headers={"Cache-Control": "private"}), {}, False),
        (PlainTextResponse("x", headers={"Cache-Control": "no-store"}), {}, False),
        (PlainTextResponse("x", headers={"Vary": "*"}), {}, False),
        (PlainTextResponse("x", status_code=404), {}, False),
        (PlainTextResponse("x", status_code=404), {"statuses": {200, 404}}, True),
        (JSONResponse({"a": [1, 2]}), {}, True),
        (Response(b"\x00\xff bytes", media_type="application/octet-stream"), {}, True),
    ],
    ids=["cookie", "cookie-opt-in", "private", "no-store", "vary-star", "404", "404-opt-in", "json",
         "bytes"],
)  # fmt: skip
async def test_shared_cache_safety_and_plain_responses(
    cache: BaseCache, response: Response, options: dict[str, Any], stored: bool
) -> None:
    calls = []

    async def make() -> Response:
        calls.append(1)
        return response

    app = Starlette(routes=[Route("/", _route(cache, make, **options))])
    async with client_for(app) as client:
        first, second = await client.get("/"), await client.get("/")
    assert first.content == second.content == response.body
    assert first.status_code == second.status_code == response.status_code
    assert second.headers["x-cache"] == ("HIT" if stored else "MISS")
    assert len(calls) == (1 if stored else 2)
    if stored:
        assert "set-cookie" not in second.headers
        assert second.headers["content-type"] == first.headers["content-type"]


async def test_plain_values_behave_as_under_cached(cache: BaseCache) -> None:
    app = FastAPI()
    calls = []

    @app.get("/items/{item_id}")
    @stream_cached(cache=cache, ttl=60, key_builder=key_builder)
    async def item(item_id: int) -> dict[str, int]:
        calls.append(item_id)
        return {"item": item_id}

    async with client_for(app) as client:
        bodies = [(await client.get(f"/items/{n}")).json() for n in (1, 1, 2, 1)]
    assert bodies == [{"item": 1}, {"item": 1}, {"item": 2}, {"item": 1}]
    assert calls == [1, 2]
    assert await item(5) == {"item": 5}  # and as a plain function, outside any request
    assert await item(5) == {"item": 5}
    assert calls == [1, 2, 5]


async def test_fastapi_streaming_route_without_request_parameter(cache: BaseCache) -> None:
    app = FastAPI()
    calls = []

    @app.get("/report.csv")
    @vary_on_headers("Accept")
    @stream_cached(cache=cache, ttl=60, namespace="reports", key_builder=key_builder)
    async def report(year: int = 2024) -> StreamingResponse:
        calls.append(year)

        async def rows() -> AsyncIterator[str]:
            yield "year,total\n"
            yield f"{year},42\n"

        return StreamingResponse(rows(), media_type="text/csv; charset=utf-8")

    async with client_for(app) as client:
        got = [
            await client.get("/report.csv", headers={"Accept": a})
            for a in ("text/csv", "x/y", "text/csv")
        ]
    assert [r.text for r in got] == ["year,total\n2024,42\n"] * 3
    assert [r.headers["x-cache"] for r in got] == ["MISS", "MISS", "HIT"]
    assert all(r.headers["vary"] == "Accept" for r in got)
    assert calls == [2024, 2024]


async def test_background_tasks_run_on_a_miss_only(cache: BaseCache) -> None:
    ran: list[str] = []

    async def make() -> Response:
        return PlainTextResponse("bg", background=BackgroundTask(ran.append, "task"))

    async with client_for(Starlette(routes=[Route("/", _route(cache, make))])) as client:
        await client.get("/")
        await client.get("/")
    assert ran == ["task"]


async def test_a_stream_longer_than_its_ttl_is_readable_for_ttl_from_commit(
    cache: BaseCache,
) -> None:
    endpoint = Endpoint([b"slow"] * 6)
    endpoint.delay = 0.25  # 1.5 s of streaming, ttl 1 s
    async with client_for(app_for(cache, endpoint, ttl=1, segment_size=4)) as client:
        await client.get("/")
        second = await client.get("/")
    assert second.headers["x-cache"] == "HIT"
    assert second.content == b"slow" * 6
    manifest = await SegmentStore(cache).get_entry(KEY)
    assert isinstance(manifest, Manifest) and manifest.expires_at is not None
    assert manifest.expires_at - manifest.stored_at == 1


async def test_requests_across_the_whole_ttl_window_get_full_bodies(cache: BaseCache) -> None:
    endpoint = Endpoint([bytes([n]) * 300 for n in range(6)])
    endpoint.delay = 0.2  # 1.2 s of streaming, ttl 3 s: about 1.8 s of entry life
    body = b"".join(endpoint.chunks)
    app = app_for(cache, endpoint, ttl=3, segment_size=256, read_batch=2)
    outcomes: list[Any] = []
    async with client_for(app) as client:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30  # a bound, not a measure: it ends once rebuilt
        while outcomes.count("MISS") < 2:  # until the entry expired and was rebuilt
            assert loop.time() < deadline, outcomes
            endpoint.delay = 0.0 if endpoint.calls else 0.2
            response = await client.get("/")
            assert response.content == body  # full replay or full miss, never truncated
            outcomes.append(response.headers["x-cache"])
            await asyncio.sleep(0.1)
    assert "HIT" in outcomes


@pytest.mark.redis
async def test_replay_of_4096_small_chunks_takes_few_redis_commands(
    redis_server: Any, request: pytest.FixtureRequest
) -> None:
    cache = make_cache("redis", request, namespace="count")
    endpoint = Endpoint([bytes([n % 256]) * KiB for n in range(4096)])
    client_redis = redis.Redis(host=redis_server.host, port=redis_server.port)
    try:
        async with client_for(app_for(cache, endpoint)) as client:
            await client.get("/")
            client_redis.config_resetstat()
            hit = await client.get("/")
        stats = client_redis.info("commandstats")
        client_redis.flushall()
    finally:
        client_redis.close()
        await cache.close()
    assert hit.headers["x-cache"] == "HIT"
    assert hit.content == b"".join(endpoint.chunks)
    commands = {n: s["calls"] for n, s in stats.items() if not n.startswith("cmdstat_config")}
    assert sum(commands.values()) <= 64, commands
    # One MGET for the manifest and its namespace token, then 16 segments in two MGETs.
    assert commands == {"cmdstat_mget": 3}


@pytest.mark.parametrize(
    "serializer",
    [
        PickleSerializer(),
        JsonSerializer(),
        CompressionSerializer(),
        CompressionSerializer(inner="json"),
    ],
    ids=["pickle", "json", "compression", "compression-json"],
)
async def test_any_serializer_on_the_cache(
    cache_factory: Callable[..., BaseCache], serializer: Any
) -> None:
    cache = cache_factory(serializer=serializer)
    endpoint = Endpoint([b"\x00\xff binary \x80" * 500])
    app = FastAPI()

    @app.get("/stream")
    @stream_cached(cache=cache, ttl=60, key=KEY, key_host=False)
    async def stream(request: Request) -> Response:
        return endpoint()

    @app.get("/value")
    @stream_cached(cache=cache, ttl=60, key="value")
    async def value() -> dict[str, list[int]]:
        endpoint.calls += 1
        return {"v": [1, 2, 3]}

    async with client_for(app) as client:
        streamed = [await client.get("/stream") for _ in range(2)]
        values = [await client.get("/value") for _ in range(2)]
    assert [r.content for r in streamed] == [b"\x00\xff binary \x80" * 500] * 2
    assert streamed[1].headers["x-cache"] == "HIT"
    assert [r.json() for r in values] == [{"v": [1, 2, 3]}] * 2
    assert endpoint.calls == 2


async def test_a_dead_backend_never_fails_a_request(
    redis_factory: Callable[[], Any],
) -> None:
    from aiocache import Cache

    server = redis_factory()
    cache = Cache(Cache.REDIS, endpoint=server.host, port=server.port, timeout=1)
    endpoint = Endpoint([b"still served"] * 3)
    try:
        async with client_for(app_for(cache, endpoint, segment_size=8)) as client:
            assert (await client.get("/")).headers["x-cache"] == "MISS"
            assert (await client.get("/")).headers["x-cache"] == "HIT"
            server.kill()
            for _ in range(3):
                response = await client.get("/")
                assert response.status_code == 200
                assert response.content == b"still served" * 3
            server.restart()
            await client.get("/")
            assert (await client.get("/")).headers["x-cache"] == "HIT"
    finally:
        await cache.close()


async def test_alias_and_cached_arguments_are_accepted(
    backend: str, request: pytest.FixtureRequest
) -> None:
    from aiocache import caches

    config = {**cache_config(backend, request), "namespace": "al"}
    saved = caches.get_config()
    caches.set_config({"default": saved["default"], "routes": config})
    endpoint = Endpoint([b"alias"])
    try:

        @stream_cached(alias="routes", ttl=30, key_builder=key_builder, noself=False)
        async def route(request: Request) -> Response:
            return endpoint()

        async with client_for(Starlette(routes=[Route("/", route)])) as client:
            got = [(await client.get("/")).headers["x-cache"] for _ in range(2)]
        assert got == ["MISS", "HIT"]
        assert route.cache is caches.get("routes")  # type: ignore[attr-defined]
    finally:
        await caches.get("routes").close()
        caches.set_config(saved)


async def test_cache_header_name_and_client_max_age_options(cache: BaseCache) -> None:
    endpoint = Endpoint([b"opts"])
    app = app_for(cache, endpoint, ttl=300, header_name="X-Edge-Cache", client_max_age=True)
    async with client_for(app) as client:
        miss, hit = await client.get("/"), await client.get("/")
    assert (miss.headers["x-edge-cache"], hit.headers["x-edge-cache"]) == ("MISS", "HIT")
    assert "x-cache" not in hit.headers
    assert miss.headers["cache-control"] == "max-age=300"
    assert 298 <= int(hit.headers["cache-control"].removeprefix("max-age=")) <= 300

    quiet = app_for(cache, Endpoint([b"quiet"]), header_name=None, key="quiet")
    async with client_for(quiet) as client:
        responses = [await client.get("/"), await client.get("/")]
    assert all("x-cache" not in r.headers for r in responses)
    assert [r.headers["cache-control"] for r in responses] == ["no-cache", "no-cache"]


async def test_endpoint_cache_control_is_kept(cache: BaseCache) -> None:
    async def make() -> Response:
        return PlainTextResponse("cc", headers={"Cache-Control": "public, max-age=5"})

    async with client_for(Starlette(routes=[Route("/", _route(cache, make))])) as client:
        miss, hit = await client.get("/"), await client.get("/")
    assert miss.headers.get_list("cache-control") == ["public, max-age=5"]
    assert hit.headers.get_list("cache-control") == ["public, max-age=5"]
    assert hit.headers["x-cache"] == "HIT"


@pytest.mark.parametrize("disconnect", ["receive-disconnect", "send-fails"])
async def test_disconnects_never_leave_a_connection_that_answers_wrongly(
    cache: BaseCache, disconnect: str
) -> None:
    """Cancelled backend calls (memcached: aiomcache would keep the unread reply on the
    pooled connection) must not make a later read return another key's bytes."""
    bodies = {path: bytes([n]) * 3000 for n, path in enumerate(["/a", "/b", "/c"], start=65)}

    async def make(request: Request) -> Response:
        return StreamingResponse(
            iter([bodies[request.url.path][i : i + 100] for i in range(0, 3000, 100)])
        )

    routes = []
    for path in bodies:

        @stream_cached(cache=cache, ttl=60, key=path, segment_size=100, read_batch=2)
        async def route(request: Request) -> Response:
            return await make(request)

        routes.append(Route(path, route))
    app = Starlette(routes=routes)
    async with client_for(app) as client:
        for path in bodies:
            assert (await client.get(path)).content == bodies[path]
    for _ in range(5):
        for path in bodies:
            await drive_path(app, path, disconnect, after_chunks=2)
        async with client_for(app) as client:
            for path in bodies:
                response = await client.get(path)
                assert response.content == bodies[path]
                assert response.headers["x-cache"] == "HIT"


async def test_fastapi_background_tasks_run_on_a_miss(cache: BaseCache) -> None:
    app = FastAPI()
    ran: list[str] = []

    @app.get("/export")
    @stream_cached(cache=cache, ttl=60, key="export")
    async def export(background_tasks: BackgroundTasks) -> Response:
        background_tasks.add_task(ran.append, "audit")
        return StreamingResponse(iter([b"rows"]))

    async with client_for(app) as client:
        miss, hit = await client.get("/export"), await client.get("/export")
    assert (miss.content, hit.content) == (b"rows", b"rows")
    assert hit.headers["x-cache"] == "HIT"
    assert ran == ["audit"]  # the endpoint's task ran on the miss; the hit ran no endpoint
