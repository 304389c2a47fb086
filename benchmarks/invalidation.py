"""What dropping a namespace costs on Redis with SCAN + UNLINK, against the per-read cost
of the alternative (namespace generations: one more round trip on every read).

    python benchmarks/invalidation.py
"""

from __future__ import annotations

import asyncio
import time

from _common import Stat, machine, redis_server, table
from aiocache import Cache

from aiocache_ext import invalidate


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
                assert dropped == size
            stat = Stat.of(samples)
            rows.append(
                [f"{size:,}", f"{other:,}", f"{stat.median * 1e3:.0f} ±{stat.spread * 100:.0f}%"]
            )
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


if __name__ == "__main__":
    asyncio.run(main())
