"""stream_cached in the stacks users deploy (SPEC §9): real uvicorn, real HTTP clients,
``GZipMiddleware`` around the app or the route, the endpoint's own ``Vary``, forged
``Host`` headers and client ``Cache-Control``, on memory, Redis and memcached."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from aiocache.base import BaseCache
from fastapi import FastAPI
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from aiocache_ext import stream_cached, vary_on_headers

from ..helpers import client_for, served

ROWS = [f"row {i}, some text that compresses well\n".encode() for i in range(400)]
BODY = b"".join(ROWS)


class Calls:
    """Counts endpoint calls."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> int:
        self.count += 1
        return self.count


def streamed(chunks: list[bytes], **options: Any) -> StreamingResponse:
    async def body() -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield chunk

    options.setdefault("media_type", "text/plain")
    return StreamingResponse(body(), **options)


def gzip_apps(
    cache: BaseCache, make: Callable[[Request], Response], bare: bool = False, **options: Any
) -> list[Any]:
    """The same cached route behind GZipMiddleware: around a FastAPI app, and on a
    Starlette route's own middleware (and, with ``bare``, with no middleware)."""

    @stream_cached(cache=cache, ttl=60, key="gz-outside", **options)
    async def outside(request: Request) -> Response:
        return make(request)

    @stream_cached(cache=cache, ttl=60, key="gz-route", **options)
    async def on_route(request: Request) -> Response:
        return make(request)

    fastapi = FastAPI()
    fastapi.add_middleware(GZipMiddleware, minimum_size=100)
    fastapi.add_api_route("/", outside, methods=["GET"])
    route = Route("/", on_route, middleware=[Middleware(GZipMiddleware, minimum_size=100)])
    apps = [fastapi, Starlette(routes=[route])]
    return [*apps, Starlette(routes=[Route("/", on_route)])] if bare else apps


@pytest.mark.parametrize("kind", ["streamed", "plain"])
async def test_gzip_middleware_never_changes_what_is_stored(cache: BaseCache, kind: str) -> None:
    calls = Calls()

    def make(request: Request) -> Response:
        calls()
        if kind == "streamed":
            return streamed(ROWS)
        return PlainTextResponse(BODY)

    for app in gzip_apps(cache, make):
        async with served(app) as client:
            filling = await client.get("/", headers={"Accept-Encoding": "gzip"})
            identity = await client.get("/", headers={"Accept-Encoding": "identity"})
            zipped = await client.get("/", headers={"Accept-Encoding": "gzip"})
            raw = await client.send(
                client.build_request("GET", "/", headers={"Accept-Encoding": "gzip"}),
                stream=True,
            )
            compressed = b"".join([part async for part in raw.aiter_raw()])
            await raw.aclose()
        assert filling.headers["content-encoding"] == "gzip"
        assert filling.content == identity.content == zipped.content == BODY
        assert "content-encoding" not in identity.headers
        assert identity.headers["x-cache"] == zipped.headers["x-cache"] == "HIT"
        assert zipped.headers["content-encoding"] == "gzip"
        assert gzip.decompress(compressed) == BODY  # compressed once, not twice
    assert calls.count == 2  # one per app


async def test_endpoint_vary_serves_each_variant_to_its_own_requests(cache: BaseCache) -> None:
    calls = Calls()

    @stream_cached(cache=cache, ttl=60, key="greeting")
    async def greeting(request: Request) -> Response:
        calls()
        language = request.headers.get("accept-language", "en")[:2]
        text = {"de": b"Guten Tag", "fr": b"Bonjour"}.get(language, b"Hello")
        return streamed([text], headers={"Vary": "Accept-Language", "Content-Language": language})

    async with served(Starlette(routes=[Route("/", greeting)])) as client:
        answers = [
            (await client.get("/", headers={"Accept-Language": lang})).content
            for lang in ["de", "en", "de", "en", "fr", "de"]
        ]
        bare = await client.get("/")
    assert answers == [b"Guten Tag", b"Hello", b"Guten Tag", b"Hello", b"Bonjour", b"Guten Tag"]
    assert bare.content == b"Hello"
    assert calls.count == 4  # de, en, fr, and no Accept-Language at all


async def test_vary_cookie_never_serves_one_users_page_to_another(cache: BaseCache) -> None:
    @stream_cached(cache=cache, ttl=60, key="page")
    async def page(request: Request) -> Response:
        user = request.cookies.get("session", "anonymous")
        return PlainTextResponse(f"page of {user}", headers={"Vary": "Cookie"})

    async with served(Starlette(routes=[Route("/", page)])) as client:
        pages = [
            (await client.get("/", headers={"Cookie": f"session={who}"})).text
            for who in ["alice", "bob", "alice", "bob"]
        ]
        hit = await client.get("/", headers={"Cookie": "session=bob"})
    assert pages == ["page of alice", "page of bob"] * 2
    assert hit.headers["x-cache"] == "HIT"


async def test_vary_values_of_any_size_or_bytes_never_fail(cache: BaseCache) -> None:
    @stream_cached(cache=cache, ttl=60, key="odd")
    async def odd(request: Request) -> Response:
        return PlainTextResponse("same", headers={"Vary": "X-Odd"})

    values = [b"x" * 16_000, bytes(range(0x80, 0xFF)), b"a b\tc", b""]
    async with served(Starlette(routes=[Route("/", odd)])) as client:
        for value in values * 2:
            response = await client.get("/", headers=[(b"x-odd", value)])
            assert (response.status_code, response.text) == (200, "same")


async def test_a_forged_host_never_changes_another_hosts_page(cache: BaseCache) -> None:
    calls = Calls()

    @stream_cached(cache=cache, ttl=60, key="links")
    async def links(request: Request) -> Response:
        calls()
        return PlainTextResponse(f"home: {request.url_for('links')}")

    async def shared(request: Request) -> Response:
        return await links_opted_out(request)

    @stream_cached(cache=cache, ttl=60, key="links-shared", key_host=False)
    async def links_opted_out(request: Request) -> Response:
        calls()
        return PlainTextResponse("no absolute links")

    app = Starlette(routes=[Route("/", links, name="links"), Route("/shared", shared)])
    async with served(app) as client:
        real = client.base_url.netloc.decode()
        forged = await client.get("/", headers={"Host": "evil.example"})
        honest = await client.get("/")
        again = await client.get("/")
        await client.get("/shared", headers={"Host": "evil.example"})
        shared_hit = await client.get("/shared")
    assert forged.text == "home: http://evil.example/"
    assert honest.text == again.text == f"home: http://{real}/"
    assert again.headers["x-cache"] == "HIT"
    assert shared_hit.headers["x-cache"] == "HIT"
    assert calls.count == 3


CLIENT_DIRECTIVES = [
    {"Cache-Control": "no-cache"},
    {"Cache-Control": "max-age=0"},
    {"Cache-Control": "no-store"},
    {"Cache-Control": "NO-CACHE, no-store , max-age=0"},
    {"Pragma": "no-cache"},
]


async def test_client_cache_control_cannot_force_origin_work(cache: BaseCache) -> None:
    calls = Calls()

    @stream_cached(cache=cache, ttl=60, key="expensive")
    async def expensive(request: Request) -> Response:
        calls()
        return streamed(ROWS)

    async with served(Starlette(routes=[Route("/", expensive)])) as client:
        await client.get("/")
        first = await client.get("/")
        for headers in CLIENT_DIRECTIVES:
            response = await client.get("/", headers=headers)
            assert (response.headers["x-cache"], response.content) == ("HIT", BODY)
        reload = await client.get(
            "/", headers={"Cache-Control": "max-age=0", "If-None-Match": first.headers["etag"]}
        )
    assert reload.status_code == 304
    assert reload.content == b""
    assert calls.count == 1


@pytest.mark.parametrize("honor", [True, "callable"])
async def test_trusted_clients_may_bypass(cache: BaseCache, honor: Any) -> None:
    calls = Calls()
    trusted: Any = True if honor is True else (lambda r: r.headers.get("x-internal") == "1")

    @stream_cached(cache=cache, ttl=60, key="trusting", honor_request_cache_control=trusted)
    async def trusting(request: Request) -> Response:
        calls()
        return PlainTextResponse(f"call {calls.count}")

    inside = {"x-internal": "1"}
    async with served(Starlette(routes=[Route("/", trusting)])) as client:
        await client.get("/")
        refreshed = await client.get("/", headers={"Cache-Control": "no-cache", **inside})
        after = await client.get("/")
        skipped = await client.get("/", headers={"Cache-Control": "no-store", **inside})
        outsider = await client.get("/", headers={"Cache-Control": "no-cache"})
    assert refreshed.text == after.text == "call 2"  # no-cache: fetched anew, and stored
    assert skipped.text == "call 3"  # no-store: fetched anew, not stored
    if honor is True:
        assert outsider.text == "call 4"
    else:
        assert (outsider.text, outsider.headers["x-cache"]) == ("call 2", "HIT")


def test_honor_request_cache_control_is_checked_at_decoration() -> None:
    with pytest.raises(TypeError, match="honor_request_cache_control"):
        stream_cached(honor_request_cache_control="yes")  # type: ignore[arg-type]


async def test_http_client_sees_same_bytes_on_every_backend_path(cache: BaseCache) -> None:
    """A real client on a real socket: miss and hit byte for byte, Content-Length exact."""

    @stream_cached(cache=cache, ttl=60, key="bytes", segment_size=1000)
    async def route(request: Request) -> Response:
        return streamed(ROWS)

    async with served(Starlette(routes=[Route("/", route)])) as client:
        miss = await client.get("/", headers={"Accept-Encoding": "identity"})
        hit = await client.get("/", headers={"Accept-Encoding": "identity"})
    assert miss.content == hit.content == BODY
    assert hit.headers["content-length"] == str(len(BODY))
    assert isinstance(hit, httpx.Response)


@pytest.mark.parametrize("kind", ["streamed", "plain"])
async def test_compress_stores_each_representation_once(cache: BaseCache, kind: str) -> None:
    calls = Calls()

    def make(request: Request) -> Response:
        calls()
        return streamed(ROWS) if kind == "streamed" else PlainTextResponse(BODY)

    for app in gzip_apps(cache, make, bare=True, compress=True):
        async with served(app) as client:
            answers = []
            for encoding in ["gzip", "gzip", "identity", "identity", "br, gzip;q=0.5"]:
                request = client.build_request("GET", "/", headers={"Accept-Encoding": encoding})
                response = await client.send(request, stream=True)
                raw = b"".join([part async for part in response.aiter_raw()])
                await response.aclose()
                answers.append((encoding, response, raw))
        for encoding, response, raw in answers:
            assert "accept-encoding" in response.headers["vary"].lower()
            if encoding == "identity":
                assert raw == BODY
                assert "content-encoding" not in response.headers
            else:
                assert response.headers["content-encoding"] == "gzip"
                assert gzip.decompress(raw) == BODY  # compressed once
        assert [r.headers["x-cache"] for _, r, _ in answers] == [
            "MISS",
            "HIT",
            "MISS",
            "HIT",
            "HIT",
        ]
        assert answers[1][1].headers["etag"] != answers[3][1].headers["etag"]
    assert calls.count == 6  # gzip and identity, per app (each on its own port: its origin)


async def test_compress_leaves_small_encoded_and_event_streams_alone(cache: BaseCache) -> None:
    bodies = {"/small": b"tiny", "/encoded": b"\x00" * 2000, "/events": b"data: 1\n\n" * 100}
    responses: dict[str, Callable[[], Response]] = {
        "/small": lambda: PlainTextResponse(bodies["/small"]),
        "/encoded": lambda: Response(bodies["/encoded"], headers={"Content-Encoding": "br"}),
        "/events": lambda: streamed([bodies["/events"]], media_type="text/event-stream"),
    }

    def route(path: str) -> Route:
        @stream_cached(cache=cache, ttl=60, key=path, compress=True)
        async def endpoint(request: Request) -> Response:
            return responses[path]()

        return Route(path, endpoint)

    async with served(Starlette(routes=[route(p) for p in responses])) as client:
        for path, body in bodies.items():
            for _ in range(2):
                request = client.build_request("GET", path, headers={"Accept-Encoding": "gzip"})
                response = await client.send(request, stream=True)
                raw = b"".join([part async for part in response.aiter_raw()])
                await response.aclose()
                expected = "br" if path == "/encoded" else None
                assert (response.headers.get("content-encoding"), raw) == (expected, body)


async def test_compressed_entry_answers_its_own_etag_with_304(cache: BaseCache) -> None:
    @stream_cached(cache=cache, ttl=60, key="zipped-etag", compress=True)
    async def page(request: Request) -> Response:
        return PlainTextResponse(BODY)

    async with served(Starlette(routes=[Route("/", page)])) as client:
        gz = {"Accept-Encoding": "gzip"}
        miss = await client.get("/", headers=gz)
        reload = await client.get("/", headers={**gz, "If-None-Match": miss.headers["etag"]})
        plain = await client.get("/", headers={"Accept-Encoding": "identity"})
    assert reload.status_code == 304
    assert plain.headers["etag"] != miss.headers["etag"]


HOSTILE = [b"x" * 16_000, bytes(range(0x80, 0x100)), b"", b"evil.example:99999", b"a b", b"\t"]


async def test_any_host_or_accept_encoding_bytes_never_fail(cache: BaseCache) -> None:
    """In-process, so that no HTTP parser filters the bytes before the app sees them."""

    @stream_cached(cache=cache, ttl=60, key="hostile", compress=True)
    async def page(request: Request) -> Response:
        return PlainTextResponse(BODY)

    app = Starlette(routes=[Route("/", page)])
    async with client_for(app) as client:
        for value in HOSTILE * 2:
            headers = [(b"host", value), (b"accept-encoding", value + b", gzip;q=x")]
            response = await client.get("/", headers=headers)
            assert (response.status_code, response.content) == (200, BODY)
        scope_without_host = await client.get("/", headers=[(b"host", b"")])
        assert scope_without_host.status_code == 200


class PublicUser(BaseModel):
    """What the route's response model lets out: no ``password``."""

    id: int
    name: str


@pytest.mark.parametrize("varied", [False, True])
async def test_the_endpoints_response_model_still_filters_what_is_sent(
    cache: BaseCache, varied: bool
) -> None:
    calls = Calls()

    async def user(user_id: int) -> PublicUser:
        calls()
        row = {"id": user_id, "name": "Ada", "password": "secret"}
        return row  # type: ignore[return-value]  # FastAPI filters it through PublicUser

    endpoint = stream_cached(cache=cache, ttl=60)(user)
    if varied:
        endpoint = vary_on_headers("Accept-Language")(endpoint)
    app = FastAPI()
    app.get("/users/{user_id}")(endpoint)
    async with client_for(app) as client:
        answers = [(await client.get("/users/7")).json() for _ in range(3)]
        schema = (await client.get("/openapi.json")).json()
    assert answers == [{"id": 7, "name": "Ada"}] * 3
    assert calls.count == 1
    ok = schema["paths"]["/users/{user_id}"]["get"]["responses"]["200"]["content"]
    assert ok["application/json"]["schema"] == {"$ref": "#/components/schemas/PublicUser"}
