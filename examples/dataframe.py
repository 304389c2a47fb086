"""The DataFrame example: a pandas DataFrame cached compressed, on Redis when reachable.

python examples/dataframe.py            # Redis on 127.0.0.1:6379 if it answers, else memory
REDIS_PORT=6380 python examples/dataframe.py
"""

from __future__ import annotations

import asyncio
import os
import pickle
import socket

import pandas as pd
from aiocache import Cache
from aiocache.base import BaseCache

from aiocache_ext import CompressionSerializer


def pick_cache(serializer: CompressionSerializer) -> BaseCache:
    host = os.environ.get("REDIS_HOST", "127.0.0.1")
    port = int(os.environ.get("REDIS_PORT", "6379"))
    try:
        socket.create_connection((host, port), timeout=0.2).close()
    except OSError:
        print(f"no Redis on {host}:{port}: caching in memory")
        return Cache(Cache.MEMORY, serializer=serializer, namespace="dev")
    print(f"caching in Redis on {host}:{port}")
    return Cache(Cache.REDIS, endpoint=host, port=port, serializer=serializer, namespace="dev")


async def main() -> None:
    serializer = CompressionSerializer()  # pickle + zlib, as the seed did by hand
    cache = pick_cache(serializer)
    df = pd.DataFrame(
        {
            "day": pd.date_range("2024-01-01", periods=200_000, freq="min"),
            "store": [f"store-{i % 40}" for i in range(200_000)],
            "sales": [round((i % 977) * 1.25, 2) for i in range(200_000)],
        }
    )
    await cache.set("key", df, ttl=60)
    got = await cache.get("key")
    pd.testing.assert_frame_equal(got, df)
    pickled, stored = len(pickle.dumps(df)), len(serializer.dumps(df))
    print(f"DataFrame {df.shape}: pickled {pickled / 1e6:.1f} MB, stored {stored / 1e6:.2f} MB")
    print(f"round trip OK, {pickled / stored:.1f}x smaller")
    await cache.close()


if __name__ == "__main__":
    asyncio.run(main())
