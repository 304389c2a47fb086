"""Latency of a cached route before, during and after a Redis freeze (SIGSTOP).

    python benchmarks/outage.py

The same FastAPI route, cached with aiocache's ``cached`` over a ``FallbackCache``
(Redis primary) and over aiocache's plain ``RedisCache``. Driven in-process through
ASGI; Redis is a private redis-server, frozen with SIGSTOP and resumed with SIGCONT.
"""

from __future__ import annotations

import asyncio
import logging
import statistics
import time
from typing import Any

from _common import machine, redis_server, table
from aiocache import Cache, cached
from fastapi import FastAPI
from streaming import call

from aiocache_ext import FallbackCache, State, key_builder


def app_with(cache_kwargs: dict[str, Any]) -> tuple[FastAPI, Any]:
    app = FastAPI()

    @app.get("/items/{item_id}")
    @cached(ttl=600, key_builder=key_builder, **cache_kwargs)
    async def item(item_id: int) -> dict[str, int]:
        return {"item": item_id}

    return app, item.cache  # type: ignore[attr-defined]


async def latencies(app: FastAPI, count: int, seconds: float | None = None) -> list[float]:
    samples: list[float] = []
    deadline = time.monotonic() + (seconds or 1e9)
    for i in range(count):
        if time.monotonic() > deadline:
            break
        start = time.perf_counter()
        size, _ = await call(app, f"/items/{i % 20}")
        assert size > 0
        samples.append(time.perf_counter() - start)
    return samples


def row(name: str, phase: str, samples: list[float]) -> list[str]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return [name, phase, str(len(samples)), f"{statistics.median(samples) * 1e3:.2f}",
            f"{p99 * 1e3:.2f}", f"{max(samples) * 1e3:.1f}"]  # fmt: skip


async def main() -> None:
    # aiocache's cached logs a traceback per failed call of the plain RedisCache.
    logging.getLogger("aiocache").setLevel(logging.CRITICAL)
    print(f"machine: {machine()}\n")
    rows, notes = [], []
    with redis_server() as server:
        redis = {"endpoint": server.host, "port": server.port}
        fallback_app, cache = app_with(
            {"cache": FallbackCache, "primary": Cache(Cache.REDIS, **redis)}
        )
        await latencies(fallback_app, 20)  # warm: entries stored in Redis
        rows.append(row("FallbackCache", "before", await latencies(fallback_app, 2000)))
        server.pause()
        during = await latencies(fallback_app, 1_000_000, seconds=3.0)
        opened = cache.state is State.OPEN
        rows.append(row("FallbackCache", "during (first 3 s)", during))
        rows.append(row("FallbackCache", "during, breaker open", during[1:]))
        server.resume()
        resumed_at = time.monotonic()
        while cache.state is not State.CLOSED and time.monotonic() - resumed_at < 30:
            await latencies(fallback_app, 1)
        back = time.monotonic() - resumed_at
        rows.append(row("FallbackCache", "after", await latencies(fallback_app, 2000)))
        notes.append(
            f"breaker open after the freeze: {opened} (first request waited "
            f"{during[0] * 1e3:.0f} ms); back on Redis {back:.2f} s after SIGCONT"
        )
        await cache.close()

        plain_app, plain = app_with({"cache": Cache.REDIS, **redis})
        await latencies(plain_app, 20)
        rows.append(row("RedisCache", "before", await latencies(plain_app, 2000)))
        server.pause()
        rows.append(row("RedisCache", "during (3 requests)", await latencies(plain_app, 3)))
        server.resume()
        rows.append(row("RedisCache", "after", await latencies(plain_app, 2000)))
        await plain.close()
    header = ["cache", "phase", "requests", "p50 ms", "p99 ms", "max ms"]
    print(table(header, rows))
    print("\n" + "\n".join(notes))


if __name__ == "__main__":
    asyncio.run(main())
