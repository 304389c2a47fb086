"""Test helpers: aiocache decorators pointed at the test's backend, ASGI clients."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import uvicorn
from aiocache.base import BaseCache

from aiocache_ext import RedisCache, State

from .servers import free_port


def same_server(cache: BaseCache) -> dict[str, Any]:
    """aiocache's decorators build their own cache: these kwargs point it at ``cache``'s
    server (nothing for memory; ``cache``'s own client for ``aiocache_ext.RedisCache``)."""
    if isinstance(cache, RedisCache):
        return {"client": cache.client}  # not closed by the decorator's cache
    return {k: getattr(cache, k) for k in ("endpoint", "port") if hasattr(cache, k)}


def client_for(app: Any) -> httpx.AsyncClient:
    """An httpx client that drives ``app`` in-process through its ASGI interface."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


@contextlib.asynccontextmanager
async def served(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """``app`` behind a real uvicorn on a free loopback port, and an HTTP client to it.

    The server runs in the test's event loop, so the test's caches stay usable; the
    client talks real HTTP/1.1 over TCP (httpx asks for gzip, like browsers do).
    """
    config = uvicorn.Config(
        app, host="127.0.0.1", port=free_port(), log_level="warning", lifespan="off",
        ws="none",  # no WebSocket stack to import (older ones warn on import)
    )  # fmt: skip
    server = uvicorn.Server(config)
    task = asyncio.ensure_future(server.serve())
    try:
        while not server.started:
            assert not task.done(), "uvicorn exited at start"
            await asyncio.sleep(0.01)
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{config.port}", timeout=30
        ) as client:
            yield client
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 30)


def leaf_errors(error: BaseException) -> list[BaseException]:
    """The errors inside ``error``: itself, or those of an exception group, flattened
    (older Starlette raises a streaming endpoint's error inside a group)."""
    inner = getattr(error, "exceptions", None)
    if inner is None:
        return [error]
    return [leaf for e in inner for leaf in leaf_errors(e)]


def state_of(cache: Any) -> State:
    """``cache.state`` read afresh: a type checker narrows ``cache.state`` after one
    comparison and would call the next (after the state changed) impossible."""
    state: State = cache.state
    return state
