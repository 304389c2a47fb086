"""What metrics cost a cache hit, in one run.

    python benchmarks/metrics.py [--quick]

1. In-process through ASGI (the harshest case: nothing but the hit): a small cached
   route on ``Cache.MEMORY`` with no listener, with ``contrib.prometheus`` and with
   ``contrib.opentelemetry`` (the SDK, an in-memory reader) enabled, rounds interleaved.
2. Over HTTP: the same route served by one uvicorn worker (``benchmarks/metrics_app.py``),
   ``wrk -c8`` for a few seconds each, metrics off and on, alternated.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path
from typing import Any

from _common import Stat, machine, table
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from prometheus_client import CollectorRegistry
from streaming import call

from aiocache_ext.contrib import opentelemetry, prometheus
from tests.processes import wrk
from tests.processes.workers import Uvicorn

HERE = Path(__file__).resolve().parent


async def in_process_rows(reps: int, number: int) -> list[list[str]]:
    import metrics_app

    app, path = metrics_app.app, "/items/1"
    await call(app, path)  # the miss

    def enable(which: str) -> Any:
        if which == "prometheus":
            return prometheus.enable(CollectorRegistry())
        if which == "opentelemetry":
            return opentelemetry.enable(MeterProvider(metric_readers=[InMemoryMetricReader()]))
        return None

    modes = ["off", "prometheus", "opentelemetry"]
    samples: dict[str, list[float]] = {mode: [] for mode in modes}
    for _ in range(reps):  # interleaved, so drift hits every mode alike
        for mode in modes:
            stop = enable(mode)
            start = time.perf_counter()
            for _ in range(number):
                await call(app, path)
            samples[mode].append(time.perf_counter() - start)
            if stop is not None:
                stop()
    return ratio_rows(samples, number)


def ratio_rows(samples: dict[str, list[float]], work: float) -> list[list[str]]:
    stats = {mode: Stat.of(times) for mode, times in samples.items()}
    base = stats["off"].median
    return [
        [mode, f"{work / s.median:,.0f} ±{s.spread * 100:.0f}%", f"{base / s.median:.3f}"]
        for mode, s in stats.items()
    ]


def http_rows(reps: int, seconds: int) -> list[list[str]]:
    modes = ["off", "prometheus"]
    workers = {
        mode: Uvicorn("metrics_app:app", HERE, {"AIOCACHE_EXT_METRICS": mode}, "/items/1")
        for mode in modes
    }
    samples: dict[str, list[float]] = {mode: [] for mode in modes}
    try:
        for worker in workers.values():
            worker.wait_ready()
        for _ in range(reps):
            for mode, worker in workers.items():  # one at a time: they share 2 cores
                result = wrk.finish(wrk.start(f"http://127.0.0.1:{worker.port}/items/1", seconds))
                assert result.errors == 0, result.output
                samples[mode].append(1 / result.requests_per_second)
        metrics = workers["prometheus"].client.get("/metrics/").text
        assert 'aiocache_ext_requests_total{outcome="hit",route="/items/{item_id}"}' in metrics
    finally:
        for worker in workers.values():
            worker.stop()
    return ratio_rows(samples, 1.0)


async def main(quick: bool) -> None:
    reps, number = (5, 1000) if quick else (21, 2000)
    in_process = await in_process_rows(reps, number)
    over_http = http_rows(2 if quick else 5, 2 if quick else 4)
    print(f"machine: {machine()}\n")
    print("### A small hit on Cache.MEMORY, in-process through ASGI (requests/s)\n")
    print(table(["metrics", "requests/s", "vs off"], in_process) + "\n")
    print("### The same hit over HTTP: one uvicorn worker, wrk -c8 (requests/s)\n")
    print(table(["metrics", "requests/s", "vs off"], over_http))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    asyncio.run(main(parser.parse_args().quick))
