"""Many processes, one origin call: 4 uvicorn workers on one Redis, in one run.

    python benchmarks/single_flight.py [--quick]

1. A cold burst: 100 concurrent requests, spread over the workers, for a report the
   endpoint streams in about 1 s (1 MB in 20 chunks). Time to the first and the last
   byte for the one request that called the endpoint (the leader) and for the others
   (waiters, served from the entry once it is committed); endpoint calls; and the Redis
   commands the burst cost per waiter, split into the wait (lease, notification) and
   the replay. ``single_flight="shared"`` against ``"process"`` (one call per worker).
2. A refresh: 16 clients loop over the workers for 1.5 s on a report whose entry has
   just gone stale (``stale_while_revalidate``), while its one refresh runs; their p99
   against the same load on fresh hits.

The workers run ``tests/processes/flight_app.py``; requests are real HTTP/1.1 (httpx).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from pathlib import Path
from typing import Any

import httpx
import redis
from _common import Stat, machine, redis_server, table

from tests.processes.workers import Uvicorn

APP_DIR = Path(__file__).resolve().parent.parent / "tests" / "processes"
BODY_SIZE = 20 * 50_000
WAIT_COMMANDS = ("set", "publish", "subscribe", "unsubscribe", "evalsha", "eval", "exists")


class Workers:
    def __init__(self, redis_port: int, single_flight: str, count: int = 4) -> None:
        env = {"REDIS_PORT": str(redis_port), "SINGLE_FLIGHT": single_flight}
        self.processes = [Uvicorn("flight_app:app", APP_DIR, env, "/pid") for _ in range(count)]
        for process in self.processes:
            process.wait_ready(30)
        self.urls = [f"http://127.0.0.1:{p.port}" for p in self.processes]

    def stop(self) -> None:
        for process in self.processes:
            process.stop()


async def timed_get(client: httpx.AsyncClient, url: str) -> tuple[float, float, str]:
    """Seconds to the first body byte and to the last, and the X-Cache marker."""
    start = time.perf_counter()
    first, size = 0.0, 0
    async with client.stream("GET", url) as response:
        async for chunk in response.aiter_raw():
            if chunk and not first:
                first = time.perf_counter() - start
            size += len(chunk)
        assert response.status_code == 200 and size == BODY_SIZE, (response.status_code, size)
        return first, time.perf_counter() - start, response.headers["x-cache"]


def commands(stats: redis.Redis) -> dict[str, int]:
    found = stats.info("commandstats")
    return {n.removeprefix("cmdstat_"): s["calls"] for n, s in found.items()}


async def burst(workers: Workers, stats: redis.Redis, count: int) -> dict[str, Any]:
    stats.flushall()
    stats.config_resetstat()
    limits = httpx.Limits(max_connections=count)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        urls = [f"{workers.urls[i % len(workers.urls)]}/report" for i in range(count)]
        results = await asyncio.gather(*(timed_get(client, url) for url in urls))
    sent = commands(stats)
    ours = ("config", "hello", "flushall", "incr", "info")  # the harness's own
    wait = sum(n for c, n in sent.items() if c in WAIT_COMMANDS)
    total = sum(n for c, n in sent.items() if not c.startswith(ours))
    leaders = [r for r in results if r[2] == "MISS"]
    waiters = [r for r in results if r[2] != "MISS"]
    return {
        "calls": int(stats.get("test:calls") or 0),
        "leader_first": statistics.median(r[0] for r in leaders),
        "leader_last": statistics.median(r[1] for r in leaders),
        "waiter_first": statistics.median(r[0] for r in waiters) if waiters else 0.0,
        "waiter_last": statistics.median(r[1] for r in waiters) if waiters else 0.0,
        "wait_per_waiter": wait / max(1, len(waiters)),
        "total_per_waiter": total / max(1, len(waiters)),
    }


async def loop_for(urls: list[str], clients: int, seconds: float) -> list[float]:
    """``clients`` clients, each requesting in a loop for ``seconds``; every latency."""
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    async with httpx.AsyncClient(timeout=60) as client:

        async def one(index: int) -> None:
            while time.perf_counter() < deadline:
                _, last, _ = await timed_get(client, urls[index % len(urls)])
                latencies.append(last)

        await asyncio.gather(*(one(i) for i in range(clients)))
    return latencies


def p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


async def refresh_round(workers: Workers, stats: redis.Redis) -> tuple[float, float, int]:
    """p99 on fresh hits, then on a just-stale entry during its refresh; refreshes made."""
    stats.flushall()
    async with httpx.AsyncClient(timeout=60) as client:
        for path in ("/report", "/stale"):
            await timed_get(client, workers.urls[0] + path)  # stored
    stored_at = time.time()
    hits = await loop_for([u + "/report" for u in workers.urls], 16, 1.5)
    await asyncio.sleep(max(0.0, stored_at + 1.05 - time.time()))  # /stale: past its ttl
    calls_before = int(stats.get("test:calls") or 0)
    during = await loop_for([u + "/stale" for u in workers.urls], 16, 1.5)
    await asyncio.sleep(1.5)  # the refresh ends
    return p99(hits), p99(during), int(stats.get("test:calls") or 0) - calls_before


async def main(quick: bool) -> None:
    reps, count = (3, 100) if quick else (7, 100)
    rows, refresh_rows = [], []
    with redis_server() as server:
        stats = redis.Redis(host=server.host, port=server.port)
        for mode in ("shared", "process"):
            workers = Workers(server.port, mode)
            try:
                await burst(workers, stats, count)  # warm-up: connections, imports
                runs = [await burst(workers, stats, count) for _ in range(reps)]
                if mode == "shared":
                    refreshes = [await refresh_round(workers, stats) for _ in range(reps)]
            finally:
                workers.stop()

            def stat(name: str, runs: list[dict[str, Any]] = runs) -> Stat:
                return Stat.of([r[name] for r in runs])

            calls = Stat.of([float(r["calls"]) for r in runs])
            rows.append([
                mode, f"{calls.median:.0f} (max {max(r['calls'] for r in runs)})",
                stat("leader_first").fmt(1000, 0), stat("leader_last").fmt(1000, 0),
                stat("waiter_first").fmt(1000, 0), stat("waiter_last").fmt(1000, 0),
                f"{stat('waiter_last').median / stat('leader_last').median:.2f}",
                f"{stat('wait_per_waiter').median:.2f}", f"{stat('total_per_waiter').median:.1f}",
            ])  # fmt: skip
        hit = Stat.of([r[0] for r in refreshes])
        during = Stat.of([r[1] for r in refreshes])
        refresh_rows.append([
            hit.fmt(1000, 1), during.fmt(1000, 1), f"{during.median / hit.median:.2f}",
            ", ".join(str(r[2]) for r in refreshes),
        ])  # fmt: skip
        stats.close()
    print(f"machine: {machine()}\n")
    print(f"Cold burst: {count} concurrent requests over 4 workers, a 1 s stream of 1 MB; "
          f"medians of {reps} runs (ms)\n")  # fmt: skip
    print(table(["single_flight", "endpoint calls", "leader first byte", "leader last byte",
                 "waiter first byte", "waiter last byte", "waiter/leader last byte",
                 "wait commands per waiter", "all commands per waiter"], rows))  # fmt: skip
    print("\nDuring a refresh: 16 clients for 1.5 s over 4 workers (ms)\n")
    print(table(["p99, fresh hits", "p99, stale during its refresh", "ratio",
                 "refreshes per round"], refresh_rows))  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    asyncio.run(main(parser.parse_args().quick))
