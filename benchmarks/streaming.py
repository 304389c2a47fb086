"""stream_cached against its physical limits, in one run.

    python benchmarks/streaming.py [--quick]

1. Replay of a 64 MiB body from a local redis-server, stored from 1 KiB and from 64 KiB
   generator chunks, against raw redis-py batched ``MGET`` of the same bytes (the limit)
   and a per-chunk ``GET`` replay (the usual approach), with Redis commands per replay.
2. Hit path of a small route on ``Cache.MEMORY``: requests/s of the cached route against
   the same FastAPI route uncached (returning a small dict) and a constant route.

Routes are driven in-process through their ASGI interface (no HTTP server), so the
numbers are the framework's and the cache's own cost.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import redis
import redis.asyncio as aredis
from _common import Stat, machine, redis_server, table
from aiocache import Cache, cached
from fastapi import FastAPI, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse

from aiocache_ext import key_builder, stream_cached

KiB, MiB = 1024, 1024 * 1024
BODY_SIZE = 64 * MiB


async def call(app: Any, path: str) -> tuple[int, dict[bytes, bytes]]:
    """One GET through the ASGI interface; returns body bytes received and headers."""
    received = 0
    headers: dict[bytes, bytes] = {}
    scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.4"},
             "http_version": "1.1", "method": "GET", "scheme": "http", "path": path,
             "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [(b"host", b"bench")], "server": ("bench", 80)}  # fmt: skip

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
        @stream_cached(cache=cache, ttl=600, key="report")
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


async def hit_rows(reps: int, number: int) -> list[list[str]]:
    app = FastAPI()
    payload = {"id": 42, "name": "Ada", "roles": ["admin", "editor"]}

    @app.get("/constant")
    async def constant() -> Response:
        return PlainTextResponse("ok")

    @app.get("/uncached")
    async def uncached() -> dict[str, Any]:
        return payload

    @app.get("/aiocache")
    @cached(ttl=600, cache=Cache.MEMORY, key_builder=key_builder)
    async def plain_cached(request: Request) -> dict[str, Any]:
        return payload

    @app.get("/stream-cached")
    @stream_cached(ttl=600, cache=Cache.MEMORY, key_builder=key_builder)
    async def response_cached() -> Response:
        return JSONResponse(payload)

    paths = ["/constant", "/uncached", "/aiocache", "/stream-cached"]
    for path in paths:
        await call(app, path)  # warm: the first call of a cached route is its miss
    samples: dict[str, list[float]] = {path: [] for path in paths}
    for _ in range(reps):  # rounds over every route, so drift hits them alike
        for path in paths:
            start = time.perf_counter()
            for _ in range(number):
                await call(app, path)
            samples[path].append(time.perf_counter() - start)
    results = {path: Stat.of(times) for path, times in samples.items()}
    base = results["/uncached"].median
    rows = []
    for path, stat in results.items():
        rows.append([path, f"{number / stat.median:,.0f} ±{stat.spread * 100:.0f}%",
                     f"{base / stat.median:.2f}"])  # fmt: skip
    return rows


async def main(quick: bool) -> None:
    print(f"machine: {machine()}\n")
    with redis_server() as server:
        replay = await replay_rows(server, 3 if quick else 7)
    print("### Replay of a 64 MiB body from Redis (MB/s, median ±half IQR)\n")
    header = ["generator chunks", "stream_cached replay", "raw MGET (limit)", "ratio",
              "per-chunk GET", "ratio", "Redis commands per replay"]  # fmt: skip
    print(table(header, replay) + "\n")
    hits = await hit_rows(5 if quick else 11, 1000)
    print("### Hit path of a small route, Cache.MEMORY (requests/s in-process)\n")
    print(table(["route", "requests/s", "vs uncached route"], hits) + "\n")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    asyncio.run(main(parser.parse_args().quick))
