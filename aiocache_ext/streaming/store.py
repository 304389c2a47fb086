"""Raw bytes in and out of any aiocache cache, whatever serializer it was built with.

Segments are opaque bytes: they go through the backend's own ``_multi_get``/``_set``/
``_delete`` hooks (the ones every ``BaseCache`` implements) with ``encoding=None``, after
``build_key`` (namespace, vary part), under the cache's timeout. The default Redis cache
uses ``JsonSerializer``, which cannot carry bytes; this path never involves it. The
manifest is ASCII text and goes through the public API, plugins included; a cache with
no plugins is read through ``_get`` directly, which saves aiocache's per-call task.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import time
from collections.abc import Awaitable, Sequence
from typing import Any, NamedTuple, TypeVar

from aiocache.base import BaseCache

from .. import events
from .._tasks import Guard
from ..backends.adapter import backend_of
from ..backends.namespaces import TOKEN_KEY, new_token
from .format import SEGMENT_GRACE, Manifest, StaleValue, VaryIndex, is_record, parse_record
from .integrity import PLAIN, Integrity

T = TypeVar("T")


class Held(NamedTuple):
    """A lookup this process answered from what it holds: the ``entry`` and the namespace
    ``token``, and the built ``keys`` they were read under with the ``raws`` held there
    (``Backend.held_raw``: the same objects until the keys change)."""

    entry: Any
    token: str | None
    keys: list[Any]
    raws: list[Any]


class SegmentStore:
    """The route cache seen as a bytes store for manifests and segments."""

    def __init__(
        self, cache: BaseCache, integrity: Integrity = PLAIN, namespace: str | None = None
    ) -> None:
        self.cache = cache
        self.integrity = integrity
        self.namespace = namespace  # None: the cache's own
        self.backend = backend_of(cache)
        # An in-process dict cannot hang (no timeout to arm on every call), and its reads
        # cost nothing to share.
        self._local = self.backend.local
        self._timeout = None if self._local else cache.timeout
        self._guard = Guard(self.backend)
        self._sources = self.backend.sources
        #: ``key`` within the backend's limit once the namespace is prepended.
        self.fit = self.backend.key_fitter(namespace)
        self._token_key = self.key(TOKEN_KEY)  # built once: every hit reads it
        self._lookups: dict[str, asyncio.Future[tuple[Any, str | None]]] = {}
        self._name = str(getattr(cache, "NAME", None) or type(cache).__name__)

    async def get_entry(self, key: str) -> Any:
        """The value under ``key``: a ``Manifest``, a ``VaryIndex``, a plain value (decoded
        with the cache's serializer, as ``cached`` would), or ``None``. A record of ours
        that is malformed or refused by ``integrity`` raises ``SerializerError``."""
        built = self.key(key)
        if self.cache.plugins:
            loads = functools.partial(self._loads, built)
            return await self.timed(
                self.cache.get(self.fit(key), loads_fn=loads, namespace=self.namespace), "get"
            )
        encoding = self.cache.serializer.encoding
        return self._loads(
            built, await self.timed(self.cache._get(built, encoding=encoding), "get")
        )

    async def lookup(self, key: str) -> tuple[Any, str | None]:
        """``get_entry(key)`` and the namespace token, in one round trip (a multi-get):
        an entry is served only if it recorded the token that is current.

        Concurrent lookups of one key share one backend read: a burst of requests for a
        hot key costs the backend one read (and one pooled connection), not one each.
        A near tier that holds both answers at once, with nothing to share.
        """
        held = self.held(key)
        if held is not None:
            return held.entry, held.token
        built = self.key(key)
        if self._local:  # plugins to run: through aiocache's API
            return await self._lookup(key, built)
        shared = self._lookups.get(key)
        if shared is not None:
            return await asyncio.shield(shared)
        shared = asyncio.get_running_loop().create_future()
        self._lookups[key] = shared
        try:
            found = await self._lookup(key, built)
        except BaseException as exc:
            # Followers fail the same way (a cancelled leader: as a failed read).
            failure = exc if isinstance(exc, Exception) else LookupError("read cancelled")
            shared.set_exception(failure)
            shared.exception()  # retrieved: there may be no follower
            raise
        else:
            shared.set_result(found)
            return found
        finally:
            del self._lookups[key]

    def held(self, key: str) -> Held | None:
        """``lookup(key)`` when this process holds the answer (in-process memory, a near
        tier), read without awaiting anything; ``None``: it must be read from the
        backend (or through plugins, which are awaited)."""
        if self.cache.plugins:
            return None
        keys = [self.key(key), self._token_key]
        raws = self.backend.held_raw(keys)
        if raws is None:
            return None
        values = self.backend.decoded(raws, self.cache.serializer.encoding)
        return Held(self._loads(keys[0], values[0]), _text(values[1]), keys, raws)

    async def _lookup(self, key: str, built: Any) -> tuple[Any, str | None]:
        if self.cache.plugins:
            keys = [self.fit(key), TOKEN_KEY]
            call = self.cache.multi_get(keys, loads_fn=_identity, namespace=self.namespace)
            raws = await self.timed(call, "multi_get")
        else:
            encoding = self.cache.serializer.encoding
            call = self.cache._multi_get([built, self._token_key], encoding=encoding)
            raws = await self.timed(call, "multi_get")
        return self._loads(built, raws[0]), _text(raws[1])

    async def ensure_token(self) -> str:
        """The namespace token, created when there is none yet (a new namespace, or its
        token was evicted: entries that recorded the old one are then misses)."""
        token_key = self._token_key
        found = _text(await self.timed(self.cache._get(token_key, encoding=None), "get"))
        if found is not None:
            return found
        with contextlib.suppress(ValueError):  # aiocache's add: another writer was first
            await self.timed(self.cache._add(token_key, new_token()), "add")
        found = _text(await self.timed(self.cache._get(token_key, encoding=None), "get"))
        if found is None:
            raise LookupError("the namespace token could not be created")
        return found

    def _loads(self, built: Any, raw: Any) -> Any:
        if raw is None:
            return None
        if is_record(raw):
            return parse_record(raw, built, self.integrity)
        return self.cache.serializer.loads(raw)

    async def put_record(
        self, key: str, record: Manifest | VaryIndex | StaleValue, ttl: float | None
    ) -> None:
        text = record.dumps(self.key(key), self.integrity)
        expiry, fitted = self.expiry(ttl), self.fit(key)
        call = self.cache.set(
            fitted, text, ttl=expiry, dumps_fn=_identity, namespace=self.namespace
        )
        await self.timed(call, "set")

    @property
    def sources(self) -> int:
        """How many places segments may be read from (``get_segments(source=...)``)."""
        return len(self._sources)

    async def get_segments(self, keys: Sequence[str], source: int = 0) -> list[bytes | None]:
        """Segments from the cache (``source`` 0), or from one tier of a routing cache."""
        if not keys:
            return []
        built = [self.key(k) for k in keys]
        call = self._sources[source]._multi_get(built, encoding=None)
        values: list[Any] = await self.timed(call, "multi_get")
        return [None if v is None else bytes(v) for v in values]

    async def put_segment(self, key: str, data: bytes, ttl: float | None) -> None:
        built = self.key(key)
        await self.timed(self.cache._set(built, data, ttl=self.expiry(ttl)), "set")

    async def extend(self, keys: Sequence[str], ttl: float) -> None:
        """Give segments a new time to live (``EXPIRE``, memcached ``touch``)."""
        built = [self.key(k) for k in keys]
        expiry = self.expiry(math.ceil(ttl))  # EXPIRE takes whole seconds
        await self.timed(asyncio.gather(*(self.cache._expire(k, expiry) for k in built)), "expire")

    def key(self, key: str) -> Any:
        """``key`` as the backend stores it: fitted, in the namespace."""
        return self.cache.build_key(self.fit(key), namespace=self.namespace)

    def expiry(self, ttl: float | None) -> Any:
        """``ttl`` as this backend takes it: memcached wants whole seconds (rounded up)."""
        return self.backend.expiry(ttl)

    async def delete(self, keys: Sequence[str]) -> None:
        step = functools.partial(self.timed, op="delete")
        await self.backend.delete_many([self.key(k) for k in keys], step)

    async def settle(self) -> None:
        """Let writes cut short by a cancellation finish before they are cleaned up."""
        await self._guard.settle()

    def timed(self, call: Awaitable[T], op: str = "call") -> Awaitable[T]:
        """A call to the backend (``op``: what it does), bounded by the cache's timeout and
        queued for a pooled connection (every call: one outside the queue could take the
        last connection); timed for the event listeners, when there are any."""
        if self._local or not events.listening():  # in-process: nothing to wait for
            return self._guard.run(call, self._timeout)
        return self._observed(call, op)

    async def _observed(self, call: Awaitable[T], op: str) -> T:
        start = time.perf_counter()
        try:
            return await self._guard.run(call, self._timeout)
        finally:
            seconds = time.perf_counter() - start
            events.emit("backend", op=op, backend=self._name, seconds=seconds)


def _identity(value: Any) -> Any:
    return value


def _text(raw: Any) -> str | None:
    if raw is None:
        return None
    return raw.decode("latin-1") if isinstance(raw, (bytes, bytearray)) else str(raw)


def segment_ttl(ttl: float | None) -> float | None:
    """How long a segment is written to live: ``SEGMENT_GRACE`` longer than its entry,
    so a stream taking up to that long still leaves every segment alive for the entry's
    whole life from its commit (a longer stream has its segments extended at commit)."""
    return None if ttl is None else ttl + SEGMENT_GRACE
