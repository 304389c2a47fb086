"""stream_cached against its physical limits, in one run.

    python benchmarks/streaming.py [--quick]

1. Replay of a 64 MiB body from a local redis-server, stored from 1 KiB and from 64 KiB
   generator chunks, against raw redis-py batched ``MGET`` of the same bytes (the limit)
   and a per-chunk ``GET`` replay (the usual approach), with Redis commands per replay.
2. What the replay's integrity checks cost: the same replay with no checks (what replay
   did before they existed), per-segment CRC-32 (the default), and with a ``secret``
   (SHA-256 per segment, HMAC-sealed manifest).
3. Hit path of a small route on ``Cache.MEMORY``: requests/s of the cached route against
   the same FastAPI route uncached (returning a small dict) and a constant route.
4. Behind ``GZipMiddleware``: a 64 KiB text hit compressed on every request, the same hit
   stored compressed (``compress=True``), the route uncached through the middleware, and
   the hit without the middleware.

Routes are driven in-process through their ASGI interface (no HTTP server), so the
numbers are the framework's and the cache's own cost.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from typing import Any

import redis
import redis.asyncio as aredis
from _common import Stat, machine, redis_server, table
from aiocache import Cache, cached
from fastapi import FastAPI, Request
from starlette.middleware.gzip import GZipMiddleware
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse

from aiocache_ext import key_builder, stream_cached
from aiocache_ext.streaming import integrity as integrity_module
from aiocache_ext.streaming import reader as reader_module
from aiocache_ext.streaming.integrity import Integrity

KiB, MiB = 1024, 1024 * 1024
BODY_SIZE = 64 * MiB


async def call(
    app: Any, path: str, extra: tuple[tuple[bytes, bytes], ...] = ()
) -> tuple[int, dict[bytes, bytes]]:
    """One GET through the ASGI interface; returns body bytes received and headers."""
    received = 0
    headers: dict[bytes, bytes] = {}
    scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.4"},
             "http_version": "1.1", "method": "GET", "scheme": "http", "path": path,
             "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [(b"host", b"bench"), *extra], "server": ("bench", 80)}  # fmt: skip

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal received
        if message["type"] == "http.response.start":
            headers.update(message["headers"])
        else:
            received += len(message.get("body", b""))

    await app(scope, receive, send)
    return received, headers


async def repeat(fn: Callable[[], Awaitable[object]], times: int) -> Stat:
    samples = []
    for _ in range(times):
        start = time.perf_counter()
        await fn()
        samples.append(time.perf_counter() - start)
    return Stat.of(samples)


def body_chunks(chunk: int) -> list[bytes]:
    block = bytes(range(256)) * (chunk // 256)
    return [block] * (BODY_SIZE // chunk)


async def replay_rows(server: Any, reps: int) -> list[list[str]]:
    raw = aredis.Redis(host=server.host, port=server.port)
    stats = redis.Redis(host=server.host, port=server.port)
    rows = []
    for chunk in (KiB, 64 * KiB):
        chunks = body_chunks(chunk)
        cache = Cache(Cache.REDIS, endpoint=server.host, port=server.port, namespace=f"c{chunk}")
        app = FastAPI()

        @app.get("/report")
        @stream_cached(cache=cache, ttl=600, key="report", key_host=False)
        async def report(request: Request, chunks: list[bytes] = chunks) -> StreamingResponse:
            async def gen() -> AsyncIterator[bytes]:
                for part in chunks:
                    yield part

            return StreamingResponse(gen(), media_type="application/octet-stream")

        size, headers = await call(app, "/report")
        assert size == BODY_SIZE and headers[b"x-cache"] == b"MISS"
        stats.config_resetstat()
        size, headers = await call(app, "/report")
        assert size == BODY_SIZE and headers[b"x-cache"] == b"HIT"
        commands = sum(
            s["calls"] for n, s in stats.info("commandstats").items() if "config" not in n
        )
        # The limit: the same segments, fetched with raw redis-py MGETs of the same batches.
        segment_keys = [k for k in await raw.keys(f"c{chunk}:report:*")]
        segment_keys.sort(key=lambda k: int(k.rsplit(b":", 1)[1]))

        async def mget_all(keys: list[bytes] = segment_keys) -> None:
            for i in range(0, len(keys), 8):
                await raw.mget(keys[i : i + 8])

        async def replay(app: Any = app) -> None:
            await call(app, "/report")

        ours_samples, limit_samples = [], []
        for _ in range(reps):  # interleaved, so drift hits both alike
            ours_samples.append((await repeat(replay, 1)).median)
            limit_samples.append((await repeat(mget_all, 1)).median)
        ours, limit = Stat.of(ours_samples), Stat.of(limit_samples)
        # The usual approach: one key per generator chunk, one GET per chunk on replay.
        await raw.mset({f"chunk{chunk}:{i}": part for i, part in enumerate(chunks)})

        async def get_each(n: int = len(chunks), c: int = chunk) -> None:
            for i in range(n):
                await raw.get(f"chunk{c}:{i}")

        per_chunk = await repeat(get_each, max(1, reps // 3))
        await raw.flushall()
        await cache.close()

        def mbps(stat: Stat) -> str:
            return f"{BODY_SIZE / stat.median / 1e6:.0f} ±{stat.spread * 100:.0f}%"

        rows.append([f"{chunk // KiB} KiB", mbps(ours), mbps(limit),
                     f"{limit.median / ours.median:.2f}", mbps(per_chunk),
                     f"{limit.median / per_chunk.median:.2f}", str(commands)])  # fmt: skip
    await raw.aclose()
    stats.close()
    return rows


def against(samples: dict[str, list[float]], base: str, work: float, sep: str) -> list[list[str]]:
    """Rows of ``work`` per second (median ±half IQR) and the ratio to the ``base`` row."""
    results = {name: Stat.of(times) for name, times in samples.items()}
    return [
        [name, f"{work / stat.median:{sep}.0f} ±{stat.spread * 100:.0f}%",
         f"{results[base].median / stat.median:.2f}"]
        for name, stat in results.items()
    ]  # fmt: skip


class NoChecks(Integrity):
    """Replay as it was before segments were checked: every check value is the same."""

    def segment_check(self, data: bytes) -> str:
        return ""


def report_app(cache: Any, chunks: list[bytes], **options: Any) -> FastAPI:
    app = FastAPI()

    @app.get("/report")
    @stream_cached(cache=cache, ttl=600, key="report", **options)
    async def report(request: Request) -> StreamingResponse:
        async def gen() -> AsyncIterator[bytes]:
            for part in chunks:
                yield part

        return StreamingResponse(gen(), media_type="application/octet-stream")

    return app


async def integrity_rows(server: Any, reps: int) -> list[list[str]]:
    """Replay before segment checks existed (no checks, one batch read ahead: the previous
    replay loop), and now, in one run."""
    chunks = body_chunks(64 * KiB)
    fast = f"now: CRC-32 ({integrity_module.CRC32_SOURCE})"
    variants = {
        "before: no checks, 1 batch ahead": (NoChecks, {}, 1, zlib.crc32),
        "no checks, 2 batches ahead": (NoChecks, {}, 2, zlib.crc32),
        fast: (Integrity, {}, 2, integrity_module.crc32),
        "now: CRC-32 (stdlib zlib)": (Integrity, {}, 2, zlib.crc32),
        "now: secret (SHA-256 + HMAC)": (Integrity, {"secret": "s"}, 2, zlib.crc32),
    }
    stream_cached_module = sys.modules["aiocache_ext.decorators.stream_cached"]
    apps: dict[str, tuple[Any, int, Any]] = {}
    caches = []
    for index, (name, (integrity, options, ahead, crc)) in enumerate(variants.items()):
        cache = Cache(Cache.REDIS, endpoint=server.host, port=server.port, namespace=f"i{index}")
        caches.append(cache)
        stream_cached_module.Integrity = integrity
        try:
            apps[name] = (report_app(cache, chunks, **options), ahead, crc)
        finally:
            stream_cached_module.Integrity = Integrity
        await call(apps[name][0], "/report")  # the miss
        size, headers = await call(apps[name][0], "/report")
        assert size == BODY_SIZE and headers[b"x-cache"] == b"HIT"

    async def replay(app: Any, ahead: int, crc: Any) -> None:
        reader_module.READ_AHEAD, integrity_module.crc32 = ahead, crc
        try:
            await call(app, "/report")
        finally:
            reader_module.READ_AHEAD, integrity_module.crc32 = 2, variants[fast][3]

    samples: dict[str, list[float]] = {name: [] for name in apps}
    for _ in range(reps):  # interleaved, so drift hits them alike
        for name, (app, ahead, crc) in apps.items():
            samples[name].append((await repeat(partial(replay, app, ahead, crc), 1)).median)
    for cache in caches:
        await cache.clear()
        await cache.close()
    return against(samples, "before: no checks, 1 batch ahead", BODY_SIZE / 1e6, "")


async def gzip_rows(reps: int, number: int) -> list[list[str]]:
    text = ("".join(f"{i},name {i},{i * 3.7:.2f}\n" for i in range(3000))).encode()[: 64 * KiB]
    plain, zipped = FastAPI(), FastAPI()
    zipped.add_middleware(GZipMiddleware)
    for app in (plain, zipped):

        @app.get("/uncached")
        async def uncached() -> Response:
            return PlainTextResponse(text)

        @app.get("/cached")
        @stream_cached(ttl=600, cache=Cache.MEMORY)
        async def cached_text() -> Response:
            return PlainTextResponse(text)

        @app.get("/compressed")
        @stream_cached(ttl=600, cache=Cache.MEMORY, compress=True)
        async def compressed_text() -> Response:
            return PlainTextResponse(text)

    gzip = ((b"accept-encoding", b"gzip, deflate, br"),)
    cases = {
        "hit through GZipMiddleware": (zipped, "/cached"),
        "hit through GZipMiddleware, compress=True": (zipped, "/compressed"),
        "uncached through GZipMiddleware": (zipped, "/uncached"),
        "hit, no middleware": (plain, "/cached"),
    }
    for app, path in cases.values():
        await call(app, path, gzip)  # the miss
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(reps):
        for name, (app, path) in cases.items():
            start = time.perf_counter()
            for _ in range(number):
                await call(app, path, gzip)
            samples[name].append(time.perf_counter() - start)
    return against(samples, "uncached through GZipMiddleware", number, ",")


async def hit_rows(reps: int, number: int) -> list[list[str]]:
    """Each route in an app of its own: Starlette matches routes in order, so a route
    further down would pay for the ones above it."""
    payload = {"id": 42, "name": "Ada", "roles": ["admin", "editor"]}
    apps = {path: FastAPI() for path in ["/constant", "/uncached", "/aiocache", "/stream-cached"]}

    @apps["/constant"].get("/constant")
    async def constant() -> Response:
        return PlainTextResponse("ok")

    @apps["/uncached"].get("/uncached")
    async def uncached() -> dict[str, Any]:
        return payload

    @apps["/aiocache"].get("/aiocache")
    @cached(ttl=600, cache=Cache.MEMORY, key_builder=key_builder)
    async def plain_cached(request: Request) -> dict[str, Any]:
        return payload

    @apps["/stream-cached"].get("/stream-cached")
    @stream_cached(ttl=600, cache=Cache.MEMORY, key_builder=key_builder)
    async def response_cached() -> Response:
        return JSONResponse(payload)

    for path, app in apps.items():
        await call(app, path)  # warm: the first call of a cached route is its miss
    samples: dict[str, list[float]] = {path: [] for path in apps}
    for _ in range(reps):  # rounds over every route, so drift hits them alike
        for path, app in apps.items():
            start = time.perf_counter()
            for _ in range(number):
                await call(app, path)
            samples[path].append(time.perf_counter() - start)
    return against(samples, "/uncached", number, ",")


async def main(quick: bool) -> None:
    print(f"machine: {machine()}\n")
    with redis_server() as server:
        replay = await replay_rows(server, 3 if quick else 7)
    print("### Replay of a 64 MiB body from Redis (MB/s, median ±half IQR)\n")
    header = ["generator chunks", "stream_cached replay", "raw MGET (limit)", "ratio",
              "per-chunk GET", "ratio", "Redis commands per replay"]  # fmt: skip
    print(table(header, replay) + "\n")
    with redis_server() as server:
        checks = await integrity_rows(server, 5 if quick else 11)
    print("### What replay integrity costs: 64 MiB from Redis, 64 KiB chunks (MB/s)\n")
    print(table(["replay", "MB/s", "vs before"], checks) + "\n")
    hits = await hit_rows(5 if quick else 11, 1000)
    print("### Hit path of a small route, Cache.MEMORY (requests/s in-process)\n")
    print(table(["route", "requests/s", "vs uncached route"], hits) + "\n")
    zipped = await gzip_rows(5 if quick else 11, 300)
    print("### A 64 KiB text route behind GZipMiddleware (requests/s in-process)\n")
    print(table(["route", "requests/s", "vs uncached through gzip"], zipped) + "\n")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    asyncio.run(main(parser.parse_args().quick))
