"""A Redis Cluster (3 primaries + 3 replicas) against one redis-server, in one run.

    python benchmarks/cluster.py [--quick]

1. A small ``stream_cached`` hit (a 2 KiB JSON body kept in the manifest), requests/s.
2. The replay of a 64 MiB body stored from 64 KiB chunks: MB/s and the Redis commands
   one replay sends (summed over every primary).

Both through ``aiocache_ext.RedisCache(client=...)``: a ``redis.asyncio.Redis`` for the
node, a ``redis.asyncio.RedisCluster`` for the cluster, all on this machine's loopback.
Routes are driven in-process through their ASGI interface, as in ``streaming.py``.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

import redis
import redis.asyncio as aredis
from _common import Stat, machine, redis_server, table
from fastapi import FastAPI, Request
from redis.asyncio.cluster import RedisCluster
from starlette.responses import JSONResponse
from streaming import BODY_SIZE, KiB, body_chunks, call, repeat, report_app

from aiocache_ext import RedisCache, stream_cached
from tests.servers import RedisCluster as ClusterServers

SMALL = {"items": ["x" * 60] * 30}  # about 2 KiB of JSON
OURS = ("config", "hello")  # commands the counting itself sends


def app_on(cache: RedisCache, chunks: list[bytes]) -> FastAPI:
    app = report_app(cache, chunks, key_host=False)

    @app.get("/small")
    @stream_cached(cache=cache, ttl=600, key="small", key_host=False)
    async def small(request: Request) -> JSONResponse:
        return JSONResponse(SMALL)

    return app


def commands(nodes: list[Any]) -> int:
    """Commands the nodes ran since their last ``CONFIG RESETSTAT``, but that and the
    ``HELLO`` of the connections asking."""
    total = 0
    for host, port in nodes:
        client = redis.Redis(host=host, port=port)
        stats = client.info("commandstats")
        total += sum(
            s["calls"] for n, s in stats.items() if not n.removeprefix("cmdstat_").startswith(OURS)
        )
        client.close()
    return total


def reset(nodes: list[Any]) -> None:
    for host, port in nodes:
        client = redis.Redis(host=host, port=port)
        client.config_resetstat()
        client.close()


async def measure(app: FastAPI, nodes: list[Any], reps: int, hits: int) -> dict[str, Any]:
    size, headers = await call(app, "/report")
    assert size == BODY_SIZE and headers[b"x-cache"] == b"MISS"
    await call(app, "/small")
    reset(nodes)
    size, headers = await call(app, "/report")
    assert size == BODY_SIZE and headers[b"x-cache"] == b"HIT"
    replay_commands = commands(nodes)
    reset(nodes)
    size, headers = await call(app, "/small")
    assert headers[b"x-cache"] == b"HIT"
    small_commands = commands(nodes)

    async def replay() -> None:
        await call(app, "/report")

    async def small_hits() -> None:
        for _ in range(hits):
            await call(app, "/small")

    return {
        "replay": await repeat(replay, reps),
        "small": await repeat(small_hits, reps * 3),
        "replay_commands": replay_commands,
        "small_commands": small_commands,
    }


async def main(quick: bool) -> None:
    reps, hits = (3, 200) if quick else (9, 1000)
    chunks = body_chunks(64 * KiB)
    results: dict[str, dict[str, Any]] = {}
    with redis_server() as server:
        client = aredis.Redis(host=server.host, port=server.port)
        cache = RedisCache(client=client, namespace="bench")
        results["one node"] = await measure(
            app_on(cache, chunks), [(server.host, server.port)], reps, hits
        )
        await client.aclose()
    cluster = ClusterServers()
    try:
        cluster.start()
        client = RedisCluster(host=cluster.host, port=cluster.port)
        cache = RedisCache(client=client, namespace="bench")
        primaries = [(n.host, n.port) for n in cluster.primaries()]
        results["cluster, 3+3"] = await measure(app_on(cache, chunks), primaries, reps, hits)
        await client.aclose()
    finally:
        cluster.kill()

    base = results["one node"]
    rows = []
    for name, result in results.items():
        small: Stat = result["small"]
        replay: Stat = result["replay"]
        rows.append([
            name,
            f"{hits / small.median:,.0f} ±{small.spread * 100:.0f}%",
            f"{base['small'].median / small.median:.2f}",
            str(result["small_commands"]),
            f"{BODY_SIZE / replay.median / 1e6:.0f} ±{replay.spread * 100:.0f}%",
            f"{base['replay'].median / replay.median:.2f}",
            str(result["replay_commands"]),
        ])  # fmt: skip
    print(f"machine: {machine()}\n")
    print(table(["backend", "small hits/s", "vs one node", "commands per small hit",
                 "64 MiB replay MB/s", "vs one node", "commands per replay"], rows))  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    asyncio.run(main(parser.parse_args().quick))
