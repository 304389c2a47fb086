"""CompressionSerializer per codec and level on three payloads.

    python benchmarks/compression.py [--quick]

Prints, per payload: compression ratio (pickled bytes / stored bytes), dumps and loads
MB/s (of pickled bytes), and set+get through a real redis-server against plain
``PickleSerializer`` (median and spread over repetitions).
"""

from __future__ import annotations

import argparse
import asyncio
import pickle
import time
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
from _common import Stat, machine, redis_server, table, timed
from aiocache import Cache
from aiocache.serializers import BaseSerializer, PickleSerializer

from aiocache_ext import CompressionSerializer

CONFIGS = [("zlib", 1), ("zlib", 6), ("gzip", 1), ("lzma", 1),
           ("zstd", 1), ("zstd", 3), ("zstd", 9), ("lz4", 0)]  # fmt: skip


def payloads() -> dict[str, Any]:
    rng = np.random.default_rng(7)
    rows = 10 * 1024 * 1024 // 24
    frame = pd.DataFrame(
        {
            "id": np.arange(rows, dtype=np.int64),
            "price": np.round(rng.uniform(0, 1000, rows), 2),
            "qty": rng.integers(0, 100, rows, dtype=np.int64),
        }
    )
    documents = {
        "users": [
            {
                "id": i,
                "name": f"user-{i}",
                "email": f"user{i}@example.org",
                "active": i % 3 == 0,
                "tags": ["admin", "beta", "eu"][: i % 4],
                "address": {"city": ("Lyon", "Oslo", "Lima")[i % 3], "zip": f"{i % 99999:05d}"},
                "score": round(i * 0.37 % 100, 2),
            }
            for i in range(60_000)
        ]
    }
    small = {"id": 42, "name": "Ada Lovelace", "roles": ["admin", "editor"], "active": True,
             "created": "2024-01-02T03:04:05Z", "quota": 1.5, "team": "engines"}  # fmt: skip
    return {"dataframe (10 MB)": frame, "nested dict (5 MB)": documents, "small dict": small}


async def round_trip(server: Any, serializer: BaseSerializer, value: Any, repeat: int) -> Stat:
    cache = Cache(
        Cache.REDIS, endpoint=server.host, port=server.port, serializer=serializer, timeout=None
    )
    samples = []
    try:
        for _ in range(repeat):
            start = time.perf_counter()
            await cache.set("bench", value)
            await cache.get("bench")
            samples.append(time.perf_counter() - start)
    finally:
        await cache.close()
    return Stat.of(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = parser.parse_args()
    loop = asyncio.new_event_loop()
    print(f"machine: {machine()}\n")
    with redis_server() as server:
        for name, value in payloads().items():
            pickled = len(pickle.dumps(value))
            big = pickled > 100_000
            repeat, number = (3 if args.quick else 7, 1) if big else (7, 200)
            baseline = loop.run_until_complete(
                round_trip(server, PickleSerializer(), value, repeat * (1 if big else 20))
            )
            rows = [["pickle (no compression)", "1.00", "-", "-", baseline.fmt(1e3, 3), "1.00"]]
            for codec, level in CONFIGS:
                serializer = CompressionSerializer(codec=codec, level=level)
                stored = serializer.dumps(value)
                dumps = timed(partial(serializer.dumps, value), repeat, number)
                loads = timed(partial(serializer.loads, stored), repeat, number)
                trip = loop.run_until_complete(
                    round_trip(server, serializer, value, repeat * (1 if big else 20))
                )
                rows.append([
                    f"{codec} {level}",
                    f"{pickled / len(stored):.2f}",
                    f"{pickled / dumps.median / 1e6:.0f} ±{dumps.spread * 100:.0f}%",
                    f"{pickled / loads.median / 1e6:.0f} ±{loads.spread * 100:.0f}%",
                    trip.fmt(1e3, 3),
                    f"{trip.median / baseline.median:.2f}",
                ])  # fmt: skip
            print(f"### {name}: {pickled:,} bytes pickled\n")
            header = ["codec level", "ratio", "dumps MB/s", "loads MB/s",
                      "Redis set+get ms", "vs pickle"]  # fmt: skip
            print(table(header, rows) + "\n", flush=True)
    loop.close()


if __name__ == "__main__":
    main()
