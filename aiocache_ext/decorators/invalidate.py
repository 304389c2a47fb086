"""``invalidate``: drop every entry of a namespace, after a write route or on demand."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Generator
from typing import Any, TypeVar

from aiocache.base import BaseCache

from .._log import log_once
from ..backends.fallback import FallbackCache
from ..backends.namespaces import invalidate_namespace
from ._resolve import resolve_cache

logger = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


class invalidate:  # lower case, like aiocache's ``cached``
    """Drop every entry of ``namespace``: ``await invalidate(namespace="users", cache=c)``,
    or ``@invalidate(namespace="users", cache=c)`` on a write route (after it succeeds).

    ``cache`` is a cache, a function decorated with ``cached``/``stream_cached`` (its
    cache), or an aiocache alias; default: the ``"default"`` alias. Streamed entries are
    invalidated at once on every backend by a new namespace token (one write), also those
    still being written; Redis and memory also drop the namespace's keys (``SCAN`` +
    ``UNLINK``, never ``KEYS``/``FLUSHDB``), plain ``cached`` values included. memcached
    cannot list keys and is never flushed: plain values stay there until their ttl.
    """

    def __init__(self, namespace: str, cache: Any = None) -> None:
        if not namespace:
            raise ValueError("invalidate needs a namespace; clearing everything is cache.clear()")
        self.namespace = namespace
        self._cache = cache

    @property
    def cache(self) -> BaseCache:
        return resolve_cache(self._cache)

    async def run(self) -> int:
        """Invalidate the namespace now; returns how many keys went (-1: the backend
        cannot list keys)."""
        cache = self.cache
        if isinstance(cache, FallbackCache):
            await cache.clear(namespace=self.namespace)
            return 0
        return await invalidate_namespace(cache, self.namespace)

    def __await__(self) -> Generator[Any, None, int]:
        return self.run().__await__()

    def __call__(self, func: F) -> F:
        @functools.wraps(func)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            result = await func(*args, **kwargs)
            try:
                await self.run()
            except Exception as exc:  # the write succeeded: do not fail the request
                log_once(
                    logger, f"invalidate:{self.namespace}:{type(exc).__name__}",
                    "namespace not invalidated namespace=%s error=%r", self.namespace, exc,
                )  # fmt: skip
            return result

        return wrapper  # type: ignore[return-value]
