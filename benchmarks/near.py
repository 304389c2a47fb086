"""NearCache: what a Redis-backed hit costs with a near tier, and how stale it may be.

    python benchmarks/near.py [--quick]

1. The hit path of a small route (a 60-byte JSON body), in-process through ASGI, in one
   run against the plain FastAPI endpoint: ``stream_cached`` on ``Cache.MEMORY``, on
   ``Cache.REDIS``, and on ``NearCache`` over that Redis, a dict-returning route on
   ``Cache.MEMORY`` (FastAPI serializes the value on each hit); and the near tier's own hit
   (``NearCache.get``, and the tier's lookup alone) in microseconds.
2. Memory: the tier filled with ten times ``max_bytes`` of values stays within it.
3. Coherence: a writer process sets a key to 1, 2, 3, ... as fast as Redis acknowledges,
   a reader process reads it through its NearCache in a loop; the staleness of each
   write is how long after its acknowledgement a read still began that returned an
   older version, both on this machine's monotonic clock. Normal load, then with the
   reader's invalidation link killed (``CLIENT KILL TYPE pubsub``) every 0.2 s, with
   Redis frozen (SIGSTOP) for 0.3 s every second, with ``FLUSHALL`` every 0.2 s, and with
   every version written to expire after 50 ms (a change too, from its expiry on).
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import multiprocessing
import os
import time
from collections.abc import Sequence
from typing import Any

import redis
from _common import Stat, machine, redis_server, table
from aiocache import Cache
from fastapi import FastAPI
from starlette.responses import JSONResponse
from streaming import call

from aiocache_ext import NearCache, stream_cached
from aiocache_ext.backends.near_tier import LocalTier

PAYLOAD = {"id": 42, "name": "Ada", "roles": ["admin", "editor"]}


async def link_up(near: NearCache) -> None:
    """Until ``near``'s invalidation link is up (it starts with the first read)."""
    deadline = time.monotonic() + 10
    while not near.link.ready:
        assert time.monotonic() < deadline, "the invalidation link never came up"
        await asyncio.sleep(0.01)


def apps_for(caches: dict[str, Any]) -> dict[str, FastAPI]:
    """The uncached route and one cached route per cache, each in an app of its own:
    Starlette matches routes in order, so a route further down would pay for the
    ones above it."""
    uncached = FastAPI()

    @uncached.get("/uncached")
    async def plain() -> JSONResponse:
        return JSONResponse(PAYLOAD)

    apps = {"/uncached": uncached}
    dicts = apps["/memory-dict"] = FastAPI()

    @dicts.get("/memory-dict")  # FastAPI serializes the cached dict on every hit
    @stream_cached(ttl=600, cache=Cache.MEMORY, key="dict", key_host=False)
    async def values() -> dict[str, Any]:
        return PAYLOAD

    for name, cache in caches.items():
        app = apps[f"/{name}"] = FastAPI()

        @app.get(f"/{name}")
        @stream_cached(ttl=600, cache=cache, key=name, key_host=False)
        async def route() -> JSONResponse:
            return JSONResponse(PAYLOAD)

    return apps


async def hit_rows(port: int, reps: int, number: int) -> list[list[str]]:
    near = NearCache(Cache(Cache.REDIS, port=port), namespace="bench")
    caches = {
        "memory": Cache(Cache.MEMORY),
        "redis": Cache(Cache.REDIS, port=port, namespace="bench"),
        "near": near,
    }
    apps = apps_for(caches)
    for path, app in apps.items():
        await call(app, path)  # the miss
        await call(app, path)
    await link_up(near)
    samples: dict[str, list[float]] = {path: [] for path in apps}
    for _ in range(reps):
        for path, app in apps.items():
            start = time.perf_counter()
            for _ in range(number):
                await call(app, path)
            samples[path].append(time.perf_counter() - start)
    for cache in caches.values():
        await cache.close()
    base = Stat.of(samples["/uncached"]).median
    rows = []
    for path, times in samples.items():
        stat = Stat.of(times)
        rows.append([path, f"{number / stat.median:,.0f} ±{stat.spread * 100:.0f}%",
                     f"{base / stat.median:.2f}"])  # fmt: skip
    return rows


async def micro_rows(port: int, reps: int) -> list[list[str]]:
    near = NearCache(Cache(Cache.REDIS, port=port), namespace="bench")
    await near.set("k", PAYLOAD)
    await near.get("k")
    await link_up(near)
    await near.get("k")
    assert len(near.tier) == 1
    number = 20_000
    gets, lookups = [], []
    key = near.build_key("k")
    for _ in range(reps):
        start = time.perf_counter()
        for _ in range(number):
            await near.get("k")
        gets.append((time.perf_counter() - start) / number)
        start = time.perf_counter()
        for _ in range(number):
            near.tier.get(key)
        lookups.append((time.perf_counter() - start) / number)
    await near.close()
    return [
        ["NearCache.get (aiocache API, JSON decoded)", Stat.of(gets).fmt(1e6, 1)],
        ["the tier's lookup alone", Stat.of(lookups).fmt(1e6, 2)],
    ]


def memory_row() -> list[str]:
    tier = LocalTier(1024 * 1024)
    value = b"x" * 1000
    for index in range(10_000):  # ten times max_bytes
        key = f"bench:key-{index}"
        tier.fill(key, tier.begin(key), value, 60.0)
    return [f"{tier.max_bytes:,}", "10,000 x 1 KB", f"{tier.nbytes:,}", f"{len(tier):,}"]


def writer(port: int, seconds: float, acks: Any, ttl: float | None) -> None:
    """Versions 1, 2, 3, ... every millisecond; with ``ttl``, each set to expire after
    ``ttl`` seconds, and the next one written once it has."""
    client = redis.Redis(port=port)
    deadline, version, acked = time.monotonic() + seconds, 0, []
    while time.monotonic() < deadline:
        version += 1
        client.set("bench:version", str(version), px=None if ttl is None else int(ttl * 1000))
        acked.append((version, time.monotonic()))
        time.sleep(0.001 if ttl is None else ttl * 1.5)
    acks.put(acked)


def reader(port: int, seconds: float, seen: Any) -> None:
    async def run() -> dict[int, float]:
        near = NearCache(Cache(Cache.REDIS, port=port, namespace="bench"), namespace="bench")
        last_read: dict[int, float] = {}  # version -> when the last read returning it began
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            began = time.monotonic()
            try:
                raw = await near.get("version")
            except Exception:  # Redis frozen: the read times out
                continue
            last_read[int(raw or 0)] = began
        await near.close()
        return last_read

    seen.put(asyncio.run(run()))


def staleness(
    acked: list[tuple[int, float]],
    last_read: dict[int, float],
    flushes: Sequence[tuple[float, float]] = (),
    ttl: float | None = None,
) -> list[float]:
    """Per change (a write; a ``FLUSHALL``; with ``ttl``, an expiry): how long after its
    acknowledgement (or the expiry) a read still began that returned a value it replaced
    (0 when none did). A read that began before, and waited on a frozen Redis, serves
    nothing stale: it does not count. Reads of no value (version 0) are left out. A
    ``FLUSHALL`` (sent, acknowledged) replaced the versions acknowledged before it was
    sent (one written meanwhile may be either side of it)."""
    changes = []  # (when, every version up to this one is replaced from then on)
    for version, ack in acked:
        changes.append((ack, version - 1))
        if ttl is not None:  # expired at most ``ttl`` after the acknowledgement
            changes.append((ack + ttl, version))
    acks = [ack for _, ack in acked]
    for sent, flushed in flushes:
        before = bisect.bisect_left(acks, sent)
        changes.append((flushed, acked[before - 1][0] if before else 0))
    versions = sorted(v for v in last_read if v > 0)
    latest, running = [], float("-inf")  # latest[i]: the last read of versions[:i + 1]
    for version in versions:
        running = max(running, last_read[version])
        latest.append(running)
    result = []
    for when, replaced in changes:
        index = bisect.bisect_right(versions, replaced)
        result.append(max(0.0, latest[index - 1] - when) if index else 0.0)
    return result


def coherence_row(
    port: int, name: str, fault: Any, seconds: float, ttl: float | None = None
) -> list[str]:
    """``fault()`` called in a loop while the writer and the reader run; it returns when
    it sent a ``FLUSHALL`` and when Redis acknowledged it (``None``: it sent none)."""
    redis.Redis(port=port).delete("bench:version")  # versions count from 1 in every row
    context = multiprocessing.get_context("spawn")
    acks, seen = context.Queue(), context.Queue()
    reading = context.Process(target=reader, args=(port, seconds + 1.0, seen))
    reading.start()
    time.sleep(1.0)  # the reader's link is up
    writing = context.Process(target=writer, args=(port, seconds, acks, ttl))
    writing.start()
    deadline, flushes = time.monotonic() + seconds, []
    while time.monotonic() < deadline:
        flushed = fault()
        if flushed is not None:
            flushes.append(flushed)
    acked, last_read = acks.get(timeout=60), seen.get(timeout=60)
    writing.join(30)
    reading.join(30)
    delays = sorted(staleness(acked, last_read, flushes, ttl))
    p99 = delays[min(len(delays) - 1, int(len(delays) * 0.99))]
    return [name, f"{len(delays):,}", f"{p99 * 1e6:,.0f}", f"{delays[-1] * 1e6:,.0f}"]


async def main(quick: bool) -> None:
    reps, number, seconds = (3, 300, 2.0) if quick else (9, 1000, 5.0)
    with redis_server() as server:
        hits = await hit_rows(server.port, reps, number)
        micro = await micro_rows(server.port, reps)
        admin = redis.Redis(port=server.port)

        def calm() -> None:
            time.sleep(0.05)

        def kill_link() -> None:
            time.sleep(0.2)
            admin.client_kill_filter(_type="pubsub")

        def freeze() -> None:
            time.sleep(0.7)
            server.pause()
            time.sleep(0.3)
            server.resume()

        def flush() -> tuple[float, float]:
            time.sleep(0.2)
            sent = time.monotonic()
            admin.flushall()
            return sent, time.monotonic()

        coherence = [
            coherence_row(server.port, "normal", calm, seconds),
            coherence_row(server.port, "link killed every 0.2 s", kill_link, seconds),
            coherence_row(server.port, "Redis frozen 0.3 s every 1 s", freeze, seconds),
            coherence_row(server.port, "FLUSHALL every 0.2 s", flush, seconds),
            coherence_row(server.port, "every version expires after 50 ms", calm, seconds, 0.05),
        ]
        admin.close()
    print(f"machine: {machine()}, pid {os.getpid()}\n")
    print("### Hit path of a small route (requests/s in-process)\n")
    print(table(["route", "requests/s", "vs uncached route"], hits) + "\n")
    print("### A near hit (µs)\n")
    print(table(["call", "µs"], micro) + "\n")
    print("### The near tier's size (max_bytes 1 MiB)\n")
    print(table(["max_bytes", "filled with", "bytes held", "entries"], [memory_row()]) + "\n")
    print(
        "### Staleness: how long after a change is acknowledged another process still "
        "reads the older value\n"
    )
    print(table(["conditions", "changes", "p99 µs", "max µs"], coherence))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    asyncio.run(main(parser.parse_args().quick))
