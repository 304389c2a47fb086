"""Example FastAPI app: aiocache's ``cached`` on routes, keys from ``aiocache_ext.key_builder``.

Run it with ``uvicorn app:app --app-dir examples`` or through ``scripts/demo``.
"""

from __future__ import annotations

import asyncio
import time

from aiocache import Cache, cached
from fastapi import FastAPI, Request

from aiocache_ext import KeyBuilder, key_builder

app = FastAPI(title="aiocache_ext example")
computed = {"hello": 0, "plain": 0}


class Session:
    """Stands for a db session from a dependency: no stable text, so kept out of keys."""


@app.get("/hello/{name}")
@cached(ttl=3600, cache=Cache.MEMORY, namespace="example", key_builder=key_builder)
async def hello(name: str, request: Request) -> dict[str, object]:
    """Expensive route: the key is ``name`` only; the per-request ``request`` is left out."""
    computed["hello"] += 1
    await asyncio.sleep(0.3)
    return {"hello": name, "computed": computed["hello"], "at": time.time()}


@app.get("/plain/{name}")
@cached(ttl=3600, cache=Cache.MEMORY, namespace="example")
async def plain(name: str, request: Request) -> dict[str, object]:
    """The same route with aiocache's default key: it contains ``request``, so it never hits."""
    computed["plain"] += 1
    await asyncio.sleep(0.3)
    return {"hello": name, "computed": computed["plain"], "at": time.time()}


report_keys = KeyBuilder(ignore_types=[Session], prefix="v1:", max_length=120)


@cached(ttl=600, cache=Cache.MEMORY, namespace="example", key_builder=report_keys)
async def build_report(db: Session, filters: dict[str, object]) -> list[int]:
    """A plain function: ``db`` is ignored by type, ``filters`` is keyed in sorted order."""
    computed["report"] = computed.get("report", 0) + 1
    return list(range(3))


@app.get("/report")
async def report() -> dict[str, object]:
    rows = await build_report(Session(), {"year": 2024, "tags": {"b", "a"}})
    rows = await build_report(Session(), {"tags": {"a", "b"}, "year": 2024})
    key = report_keys(build_report, Session(), {"year": 2024, "tags": {"b", "a"}})
    return {"rows": rows, "computed": computed["report"], "key": key}
