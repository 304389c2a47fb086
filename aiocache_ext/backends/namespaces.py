"""Invalidating whole namespaces, and dropping keys, without blocking Redis.

Every namespace has a token (a random value under ``TOKEN_KEY``) that each stored stream
entry records when its write starts; an entry is served only while the token is the
same. ``invalidate_namespace`` sets a new token: one write, O(1) on every backend, and a
write that started before it can never become visible after it. Where the backend can
list keys, the namespace's keys are also dropped, which frees memory and drops values
of plain ``cached`` too: Redis ``SCAN MATCH <prefix>*`` + ``UNLINK`` in batches, never
``KEYS`` (one call walks the whole keyspace while the server serves nobody) nor
``FLUSHDB`` (it wipes other users' data); in-process memory: the matching dict keys.
memcached cannot list keys, and is never flushed: there, the token is all.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
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


#: The key, in each namespace, that holds its token.
TOKEN_KEY = "__aiocache_ext_token__"


def new_token() -> str:
    return secrets.token_hex(8)


async def invalidate_namespace(cache: BaseCache, namespace: str, step: Step = _as_is) -> int:
    """Make every stream entry of ``namespace`` a miss from now on, and drop its keys where
    the backend can list them; returns how many keys went (-1: it cannot list keys)."""
    dropped = await drop_namespace(cache, cache.build_key("", namespace=namespace), step)
    await step(cache._set(cache.build_key(TOKEN_KEY, namespace=namespace), new_token()))
    if dropped < 0:
        log_once(
            logger, f"unlisted:{type(cache).__name__}",
            "namespace invalidated by its token only backend=%s namespace=%s reason=it "
            "cannot list keys: plain cached values stay until their ttl",
            type(cache).__name__, namespace,
        )  # fmt: skip
    return dropped


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
    """Delete every key that starts with ``prefix`` (a built key prefix); returns how many
    (-1: the backend cannot list keys, so nothing was deleted)."""
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
    return -1


def _redis_client(cache: BaseCache) -> Any:
    return getattr(cache, "client", None) if getattr(cache, "NAME", "") == "redis" else None


def _starts_with(key: Any, prefix: Any) -> bool:
    if isinstance(key, bytes) and isinstance(prefix, str):
        prefix = prefix.encode()
    elif isinstance(key, str) and isinstance(prefix, bytes):
        prefix = prefix.decode()
    return isinstance(key, (str, bytes)) and key.startswith(prefix)
