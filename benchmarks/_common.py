"""Shared helpers for the benchmarks: timing with median and spread, a private redis-server."""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.servers import RedisServer  # noqa: E402  (the tests' own server harness)


@dataclass(frozen=True)
class Stat:
    """Median and relative spread (half the interquartile range / median) of repeated
    measurements: robust to the odd scheduler hiccup on a 2-core machine."""

    median: float
    spread: float

    @classmethod
    def of(cls, samples: list[float]) -> Stat:
        median = statistics.median(samples)
        if len(samples) < 4 or not median:
            return cls(median, (max(samples) - min(samples)) / 2 / median if median else 0.0)
        q1, _, q3 = statistics.quantiles(samples, n=4)
        return cls(median, (q3 - q1) / 2 / median)

    def fmt(self, unit_scale: float = 1.0, digits: int = 1) -> str:
        return f"{self.median * unit_scale:.{digits}f} ±{self.spread * 100:.0f}%"


def timed(fn: Callable[[], object], repeat: int, number: int = 1) -> Stat:
    """Seconds per call of ``fn``: ``repeat`` samples, each the mean of ``number`` calls."""
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        samples.append((time.perf_counter() - start) / number)
    return Stat.of(samples)


@contextmanager
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)
