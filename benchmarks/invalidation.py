"""What invalidation costs: dropping a namespace on Redis with SCAN + UNLINK, the
per-read cost of a separate generation read (one more round trip on every read), and
what the namespace token that stream entries check costs a hit (read in the same MGET
as the entry), against the hit before tokens existed (one GET), in one run.

    python benchmarks/invalidation.py
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import redis
from _common import Stat, machine, redis_server, table
from aiocache import Cache
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from streaming import call

from aiocache_ext import invalidate, stream_cached
from aiocache_ext.streaming.store import SegmentStore


async def _lookup_before_tokens(self: SegmentStore, key: str) -> tuple[Any, str | None]:
    """The hit's read as it was before namespace tokens: one GET of the entry."""
    entry = await self.get_entry(key)
    return entry, getattr(entry, "token", None)


async def token_rows(server: Any, reps: int, hits: int) -> list[list[str]]:
    cache = Cache(Cache.REDIS, endpoint=server.host, port=server.port, namespace="hit")
    stats = redis.Redis(host=server.host, port=server.port)

    @stream_cached(cache=cache, ttl=600, key="small", key_host=False)
    async def small(request: Request) -> Response:
        return PlainTextResponse("a small cached page")

    app = Starlette(routes=[Route("/", small)])
    await call(app, "/")  # the miss
    now = SegmentStore.lookup
    variants = {"before: GET of the entry": _lookup_before_tokens, "now: MGET entry + token": now}
    samples: dict[str, list[float]] = {name: [] for name in variants}
    commands: dict[str, float] = {}
    for _ in range(reps):  # interleaved, so drift hits both alike
        for name, lookup in variants.items():
            SegmentStore.lookup = lookup  # type: ignore[method-assign]
            stats.config_resetstat()
            begin = time.perf_counter()
            for _ in range(hits):
                _, headers = await call(app, "/")
                assert headers[b"x-cache"] == b"HIT"
            samples[name].append((time.perf_counter() - begin) / hits)
            counted = stats.info("commandstats")
            used = sum(v["calls"] for k, v in counted.items() if "config" not in k)
            commands[name] = used / hits
    SegmentStore.lookup = now  # type: ignore[method-assign]
    await cache.clear()
    await cache.close()
    stats.close()
    base = Stat.of(samples["before: GET of the entry"]).median
    rows = []
    for name, times in samples.items():
        stat = Stat.of(times)
        rows.append([name, f"{stat.median * 1e6:.0f} ±{stat.spread * 100:.0f}%",
                     f"{stat.median / base:.2f}", f"{commands[name]:.2f}"])  # fmt: skip
    return rows


async def main() -> None:
    print(f"machine: {machine()}\n")
    rows = []
    with redis_server() as server:
        target = Cache(Cache.REDIS, endpoint=server.host, port=server.port, namespace="drop")
        others = Cache(Cache.REDIS, endpoint=server.host, port=server.port, namespace="keep")
        for size, other in ((1_000, 100_000), (10_000, 100_000), (10_000, 1_000_000)):
            await others.client.flushall()
            for start in range(0, other, 10_000):
                await others.multi_set([(f"k{i}", 1) for i in range(start, start + 10_000)])
            samples = []
            for _ in range(3):
                await target.multi_set([(f"k{i}", 1) for i in range(size)])
                begin = time.perf_counter()
                dropped = await invalidate(namespace="drop", cache=target)
                samples.append(time.perf_counter() - begin)
                assert dropped >= size  # and the token a previous round set
            stat = Stat.of(samples)
            rows.append(
                [f"{size:,}", f"{other:,}", f"{stat.median * 1e3:.0f} ±{stat.spread * 100:.0f}%"]
            )
        tokens = await token_rows(server, 9, 500)
        gets = []
        for _ in range(2000):
            begin = time.perf_counter()
            await target.client.get("gen")
            gets.append(time.perf_counter() - begin)
        await target.close()
        await others.close()
    print(table(["keys dropped", "other keys in Redis", "SCAN + UNLINK ms"], rows))
    extra = Stat.of(gets)
    spread = f"±{extra.spread * 100:.0f}%"
    print(f"\none extra GET per read (generations): {extra.median * 1e6:.0f} µs {spread}")
    print("\n### A small stream_cached hit on Redis, namespace token checked (in-process)\n")
    header = ["hit read", "µs per hit", "vs before", "Redis commands per hit"]
    print(table(header, tokens))


if __name__ == "__main__":
    asyncio.run(main())
