"""Test helpers: aiocache decorators pointed at the test's backend, ASGI clients."""

from __future__ import annotations

from typing import Any

import httpx
from aiocache.base import BaseCache


def same_server(cache: BaseCache) -> dict[str, Any]:
    """aiocache's decorators build their own cache: these kwargs point it at ``cache``'s
    server (nothing for memory)."""
    return {k: getattr(cache, k) for k in ("endpoint", "port") if hasattr(cache, k)}


def client_for(app: Any) -> httpx.AsyncClient:
    """An httpx client that drives ``app`` in-process through its ASGI interface."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")
