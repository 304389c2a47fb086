"""Raw bytes in and out of any aiocache cache, whatever serializer it was built with.

Segments are opaque bytes: they go through the backend's own ``_multi_get``/``_set``/
``_delete`` hooks (the ones every ``BaseCache`` implements) with ``encoding=None``, after
``build_key`` (namespace, vary part), under the cache's timeout. The default Redis cache
uses ``JsonSerializer``, which cannot carry bytes; this path never involves it. The
manifest is ASCII text and goes through the public API, plugins included; a cache with
no plugins is read through ``_get`` directly, which saves aiocache's per-call task.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Awaitable, Sequence
from typing import Any, TypeVar

from aiocache.backends.memory import SimpleMemoryBackend
from aiocache.base import BaseCache

from .._tasks import Guard
from ..backends.namespaces import drop_keys
from .format import Manifest, VaryIndex, is_record, parse_record
from .integrity import PLAIN, Integrity

T = TypeVar("T")


class SegmentStore:
    """The route cache seen as a bytes store for manifests and segments."""

    def __init__(self, cache: BaseCache, integrity: Integrity = PLAIN) -> None:
        self.cache = cache
        self.integrity = integrity
        # An in-process dict cannot hang: no timeout to arm on every call.
        self._timeout = None if isinstance(cache, SimpleMemoryBackend) else cache.timeout
        self._guard = Guard(cache)

    async def get_entry(self, key: str) -> Any:
        """The value under ``key``: a ``Manifest``, a ``VaryIndex``, a plain value (decoded
        with the cache's serializer, as ``cached`` would), or ``None``. A record of ours
        that is malformed or refused by ``integrity`` raises ``SerializerError``."""
        built = self.cache.build_key(key)
        if self.cache.plugins:
            return await self.cache.get(key, loads_fn=functools.partial(self._loads, built))
        encoding = self.cache.serializer.encoding
        return self._loads(built, await self._timed(self.cache._get(built, encoding=encoding)))

    def _loads(self, built: Any, raw: Any) -> Any:
        if raw is None:
            return None
        if is_record(raw):
            return parse_record(raw, built, self.integrity)
        return self.cache.serializer.loads(raw)

    async def put_record(self, key: str, record: Manifest | VaryIndex, ttl: int | None) -> None:
        text = record.dumps(self.cache.build_key(key), self.integrity)
        await self.cache.set(key, text, ttl=ttl, dumps_fn=_identity)

    async def get_segments(self, keys: Sequence[str]) -> list[bytes | None]:
        if not keys:
            return []
        built = [self.cache.build_key(k) for k in keys]
        values: list[Any] = await self._timed(self.cache._multi_get(built, encoding=None))
        return [None if v is None else bytes(v) for v in values]

    async def put_segment(self, key: str, data: bytes, ttl: int | None) -> None:
        built = self.cache.build_key(key)
        await self._timed(self.cache._set(built, data, ttl=ttl))

    async def delete(self, keys: Sequence[str]) -> None:
        await drop_keys(self.cache, [self.cache.build_key(k) for k in keys], self._timed)

    async def settle(self) -> None:
        """Let writes cut short by a cancellation finish before they are cleaned up."""
        await self._guard.settle()

    def _timed(self, call: Awaitable[T]) -> Awaitable[T]:
        return self._guard.run(call, self._timeout)


def _identity(value: str) -> str:
    return value


def segment_ttl(ttl: float | None) -> int | None:
    """Segments live a little longer than their entry, never shorter (whole seconds,
    as memcached wants)."""
    return None if ttl is None else math.ceil(ttl) + 1
