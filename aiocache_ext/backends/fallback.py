"""``FallbackCache``: Redis (or memcached) first, in-process memory while it is down."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

from aiocache import SimpleMemoryCache
from aiocache.base import BaseCache
from aiocache.serializers import JsonSerializer

from .. import events
from .._config import build
from .._tasks import Guard
from ..ttl import parse_ttl
from .adapter import backend_of
from .breaker import Breaker, State
from .errors import is_outage
from .journal import Journal
from .namespaces import invalidate_namespace
from .recovery import Recovery

logger = logging.getLogger(__name__)
T = TypeVar("T")

StateHook = Callable[[State, State, "BaseException | None"], None]
#: One backend operation, given the cache to run it on and how that cache takes a ttl.
Operation = Callable[[BaseCache, Callable[[Any], Any]], Awaitable[Any]]


def _as_given(ttl: Any) -> Any:
    return ttl


class FallbackCache(BaseCache):  # type: ignore[misc]
    """A ``BaseCache`` that stores in ``primary`` while it answers, in ``fallback`` while
    it does not, and never makes a caller wait on a primary that is down.

    It owns the serializer, plugins, namespace and key building, like any aiocache
    cache, and routes each backend operation. ``primary`` and ``fallback`` are caches, or
    aiocache config dicts (``{"cache": "aiocache.RedisCache", "endpoint": ..., ...}``).
    Each primary operation gets ``primary_timeout`` seconds, and one more try if it fails
    (a stale pooled connection, or a burst holding this process's event loop past the
    timeout: neither is the primary's fault). A second failure answers from the fallback
    and opens the circuit (unless the primary answered other calls meanwhile); a
    background probe (``PING``; memcached ``version``) with backoff between ``probe_min``
    and ``probe_max`` seconds closes it again. Before the primary serves again, every
    key written or deleted during the outage is deleted there and the fallback is
    emptied, so nothing stale is served; and the fallback keeps serving for
    ``recovery_hold`` seconds (default ``probe_max`` + 0.5) after the primary is back,
    long enough for the other workers, which probe at least that often, to replay their
    own outage invalidations before anyone reads again.
    ``on_state_change(old, new, error)`` is called once per change; ``state`` tells.
    """

    NAME = "fallback"

    def __init__(
        self,
        primary: Any = None,
        fallback: Any = None,
        primary_timeout: float = 0.05,
        first_timeout: float = 1.0,
        probe_min: float = 0.05,
        probe_max: float = 0.5,
        recovery_hold: float | None = None,
        journal_size: int = 10_000,
        on_state_change: StateHook | None = None,
        serializer: Any = None,
        **kwargs: Any,
    ) -> None:
        if primary is None:
            raise ValueError("FallbackCache needs a primary, e.g. Cache(Cache.REDIS, ...)")
        if kwargs.get("ttl") is not None:
            kwargs["ttl"] = parse_ttl(kwargs["ttl"])  # any ttl form, checked here
        super().__init__(serializer=serializer or JsonSerializer(), **kwargs)
        self.primary: BaseCache = build(primary, BaseCache, "cache")
        self.fallback: BaseCache = build(fallback or SimpleMemoryCache(), BaseCache, "cache")
        self.primary_timeout = float(primary_timeout)
        # The first operation also opens a connection (and, for redis-py, a handshake):
        # it gets longer, so a busy start is not mistaken for an outage.
        self.first_timeout = max(float(first_timeout), self.primary_timeout)
        self._answered_at = 0.0  # time.monotonic() of the primary's last answer (0: none)
        self.on_state_change = on_state_change
        backend = backend_of(self.primary)
        self._fit_ttl = backend.expiry
        self._guard = Guard(backend)
        # Another worker notices the primary within probe_max plus one probe timeout.
        hold = float(probe_max) + 0.5 if recovery_hold is None else float(recovery_hold)
        self.recovery_hold = hold
        self._recovery = Recovery(
            self.primary, self.fallback, backend, self._guard.run,
            breaker=Breaker(float(probe_min), float(probe_max)),
            journal=Journal(int(journal_size), self.namespace),
            hold=hold, primary_timeout=self.primary_timeout, changed=self._changed,
        )  # fmt: skip
        self._breaker = self._recovery.breaker

    @property
    def state(self) -> State:
        return self._breaker.state

    def __repr__(self) -> str:
        return f"FallbackCache(primary={self.primary!r}, state={self.state.value})"

    def _build_key(self, key: Any, namespace: str | None = None) -> Any:
        """Keys in the primary's own format (memcached wants bytes), used on both sides,
        in this cache's namespace unless another is given."""
        return self.primary.build_key(
            key, namespace=self.namespace if namespace is None else namespace
        )

    # The backend hooks of BaseCache: each one an operation, routed.

    async def _get(self, key: Any, encoding: str | None = "utf-8", _conn: Any = None) -> Any:
        return await self._route(lambda c, _: c._get(key, encoding=encoding))

    async def _gets(self, key: Any, encoding: str | None = "utf-8", _conn: Any = None) -> Any:
        return await self._route(lambda c, _: c._gets(key, encoding=encoding))

    async def _multi_get(self, keys: Any, encoding: str | None = "utf-8", _conn: Any = None) -> Any:
        return await self._route(lambda c, _: c._multi_get(keys, encoding=encoding))

    async def _set(
        self, key: Any, value: Any, ttl: Any = None, _cas_token: Any = None, _conn: Any = None
    ) -> Any:
        return await self._route(
            lambda c, fit: c._set(key, value, ttl=fit(ttl), _cas_token=_cas_token), [key]
        )

    async def _multi_set(self, pairs: Any, ttl: Any = None, _conn: Any = None) -> Any:
        pairs = list(pairs)
        return await self._route(
            lambda c, fit: c._multi_set(pairs, ttl=fit(ttl)), [k for k, _ in pairs]
        )

    async def _add(self, key: Any, value: Any, ttl: Any = None, _conn: Any = None) -> Any:
        return await self._route(lambda c, fit: c._add(key, value, ttl=fit(ttl)), [key])

    async def _exists(self, key: Any, _conn: Any = None) -> Any:
        return await self._route(lambda c, _: c._exists(key))

    async def _increment(self, key: Any, delta: int, _conn: Any = None) -> Any:
        return await self._route(lambda c, _: c._increment(key, delta), [key])

    async def _expire(self, key: Any, ttl: Any, _conn: Any = None) -> Any:
        return await self._route(lambda c, fit: c._expire(key, ttl=fit(ttl)), [key])

    async def _delete(self, key: Any, _conn: Any = None) -> Any:
        return await self._route(lambda c, _: c._delete(key), [key])

    async def _raw(self, command: str, *args: Any, **kwargs: Any) -> Any:
        return await self._route(lambda c, _: c._raw(command, *args, **kwargs))

    async def _redlock_release(self, key: Any, value: Any) -> Any:
        return await self._route(lambda c, _: c._redlock_release(key, value), [key])

    async def _clear(self, namespace: str | None = None, _conn: Any = None) -> Any:
        await self._recovery.settled()
        if self._breaker.closed:
            try:
                if namespace:  # never KEYS (aiocache's RedisCache does), never a flush
                    await invalidate_namespace(self.primary, namespace, self._timed)
                else:
                    await self._timed(self.primary._clear(None))
                return True
            except Exception as exc:
                if not is_outage(exc):
                    raise
                self._recovery.trip(exc)
        self._recovery.journal.cleared(namespace)
        if namespace:
            await invalidate_namespace(self.fallback, namespace)
            return True
        return await self.fallback._clear(None)

    async def _close(self, *args: Any, **kwargs: Any) -> None:
        self._recovery.stop()
        await self.primary.close()
        await self.fallback.close()

    async def _route(self, operation: Operation, touched: Iterable[Any] | None = None) -> Any:
        """Run ``operation`` on the primary while the breaker is closed, else (or when it
        fails twice) on the fallback, recording ``touched`` keys for the recovery (a
        change waits while the recovery's last replay runs)."""
        if touched is not None:
            await self._recovery.settled()
        if self._breaker.closed:
            for attempt in (1, 2):
                timeout = self.primary_timeout if self._answered_at else self.first_timeout
                started = time.monotonic()
                try:
                    result = await self._timed(operation(self.primary, self._fit_ttl), timeout)
                except Exception as exc:
                    if not is_outage(exc):
                        raise
                    if attempt == 1:
                        # A pooled connection the server closed (idle timeout, restart)
                        # fails once, and the client drops it; a timeout may be this
                        # process's (a burst holding the event loop while the reply waits
                        # unread): either way, try once more.
                        continue
                    if self._answered_at <= started:  # nothing else answered meanwhile
                        self._recovery.trip(exc)
                    break
                else:
                    self._answered_at = time.monotonic()
                    return result
        if touched is not None:
            self._recovery.journal.touched(touched)
        return await operation(self.fallback, _as_given)

    async def _timed(self, call: Awaitable[T], timeout: float | None = None) -> T:
        result: T = await self._guard.run(call, timeout or self.primary_timeout)
        return result

    def _changed(self, old: State, new: State, error: BaseException | None) -> None:
        logger.warning(
            "cache primary state=%s previous=%s primary=%r error=%r", new.value, old.value,
            self.primary, error,
        )  # fmt: skip
        events.emit("breaker", cache=self.namespace or "default", state=new.value)
        if self.on_state_change is not None:
            try:
                self.on_state_change(old, new, error)
            except Exception:
                logger.exception("on_state_change hook failed")
