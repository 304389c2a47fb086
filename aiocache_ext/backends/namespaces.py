"""Dropping keys and whole namespaces from an aiocache backend, without blocking Redis.

Redis: ``SCAN MATCH <prefix>*`` + ``UNLINK`` in batches, never ``KEYS`` (one call walks
the whole keyspace while the server serves nobody) nor ``FLUSHDB`` (it wipes other
users' data). In-process memory: the matching dict keys. memcached cannot list keys, so
a namespace can only be dropped there by flushing the server (logged once).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from aiocache.backends.memory import SimpleMemoryBackend
from aiocache.base import BaseCache

from .._log import log_once

logger = logging.getLogger(__name__)
T = TypeVar("T")
Step = Callable[[Awaitable[Any]], Awaitable[Any]]
BATCH = 500
_GLOB_SPECIAL = re.compile(r"([\\*?\[\]])")


async def _as_is(call: Awaitable[T]) -> T:
    return await call


async def drop_keys(cache: BaseCache, keys: Sequence[Any], step: Step = _as_is) -> None:
    """Delete built keys, in batches (``UNLINK`` on Redis); ``step`` wraps each backend
    call (``FallbackCache`` bounds each one with its primary timeout)."""
    client = _redis_client(cache)
    for start in range(0, len(keys), BATCH):
        batch = keys[start : start + BATCH]
        if client is not None:
            await step(client.unlink(*batch))
        else:
            await step(asyncio.gather(*(cache._delete(k) for k in batch)))


async def drop_namespace(cache: BaseCache, prefix: Any, step: Step = _as_is) -> int:
    """Delete every key that starts with ``prefix`` (a built key prefix); returns a count
    where the backend can tell (memcached: -1, the whole server was flushed)."""
    client = _redis_client(cache)
    if client is not None:
        text = prefix.decode() if isinstance(prefix, bytes) else str(prefix)
        pattern = _GLOB_SPECIAL.sub(r"\\\1", text) + "*"
        dropped, cursor = 0, 0
        while True:  # short steps: Redis serves others between them
            cursor, keys = await step(client.scan(cursor, match=pattern, count=1000))
            if keys:
                await step(client.unlink(*keys))
                dropped += len(keys)
            if not cursor:
                return dropped
    if isinstance(cache, SimpleMemoryBackend):
        matching = [k for k in list(cache._cache) if _starts_with(k, prefix)]
        for key in matching:
            await cache._delete(key)
        return len(matching)
    log_once(
        logger, f"flush:{type(cache).__name__}",
        "namespace invalidation flushes the whole server backend=%s prefix=%r "
        "reason=it cannot list keys", type(cache).__name__, prefix,
    )  # fmt: skip
    await step(cache._clear(None))
    return -1


def _redis_client(cache: BaseCache) -> Any:
    return getattr(cache, "client", None) if getattr(cache, "NAME", "") == "redis" else None


def _starts_with(key: Any, prefix: Any) -> bool:
    if isinstance(key, bytes) and isinstance(prefix, str):
        prefix = prefix.encode()
    elif isinstance(key, str) and isinstance(prefix, bytes):
        prefix = prefix.decode()
    return isinstance(key, (str, bytes)) and key.startswith(prefix)
