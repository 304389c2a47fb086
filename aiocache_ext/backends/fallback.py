"""``FallbackCache``: Redis (or memcached) first, in-process memory while it is down."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

from aiocache import SimpleMemoryCache
from aiocache.base import BaseCache
from aiocache.serializers import JsonSerializer

from .._config import build
from .._log import log_once
from .._tasks import Guard
from ..ttl import parse_ttl
from .adapter import backend_of
from .breaker import Breaker, State
from .journal import EVERYTHING, Journal
from .namespaces import invalidate_namespace

logger = logging.getLogger(__name__)
T = TypeVar("T")

#: What a primary raises when it is down, hung or unreachable (not when it refuses an
#: operation: a ``ValueError`` from ``add`` on an existing key is an answer, not an outage).
OUTAGE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    EOFError,
    asyncio.TimeoutError,
    asyncio.IncompleteReadError,
)
#: Errors of those families that are answers, not outages: a full redis-py pool is a
#: burst on a healthy server (``Guard`` queues calls so it should not happen at all).
NOT_OUTAGES: tuple[type[BaseException], ...] = ()
try:
    import redis.exceptions as _redis_errors

    OUTAGE_ERRORS += (_redis_errors.ConnectionError, _redis_errors.TimeoutError)
    if hasattr(_redis_errors, "MaxConnectionsError"):  # redis-py 6+
        NOT_OUTAGES += (_redis_errors.MaxConnectionsError,)
except ImportError:  # pragma: no cover - the redis extra is not installed
    pass
try:
    from aiomcache.exceptions import ClientException as _McError
    from aiomcache.exceptions import ValidationException as _McRefused
except ImportError:  # pragma: no cover - the memcached extra is not installed
    _McError = _McRefused = ()  # type: ignore[assignment,misc]


def is_outage(error: BaseException) -> bool:
    """Whether ``error`` means the primary cannot be reached (not a wrong answer)."""
    if NOT_OUTAGES and isinstance(error, NOT_OUTAGES):
        return False
    if isinstance(error, OUTAGE_ERRORS):
        return True
    # aiomcache reads an empty line from a connection the server closed, and reports it
    # as "<command> failed: b''" (on Python 3.12+ instead of IncompleteReadError).
    return (
        isinstance(error, _McError)
        and not isinstance(error, _McRefused)
        and str(error).endswith(": b''")
    )


StateHook = Callable[[State, State, "BaseException | None"], None]


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
        self._breaker = Breaker(float(probe_min), float(probe_max))
        # Another worker notices the primary within probe_max plus one probe timeout.
        hold = float(probe_max) + 0.5 if recovery_hold is None else float(recovery_hold)
        self.recovery_hold = hold
        self._journal = Journal(int(journal_size), self.namespace)
        self._probe: asyncio.Task[None] | None = None
        self._backend = backend_of(self.primary)
        self._guard = Guard(self._backend)

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

    # The backend hooks of BaseCache: each one routed.

    async def _get(self, key: Any, encoding: str | None = "utf-8", _conn: Any = None) -> Any:
        return await self._route("_get", key, encoding=encoding)

    async def _gets(self, key: Any, encoding: str | None = "utf-8", _conn: Any = None) -> Any:
        return await self._route("_gets", key, encoding=encoding)

    async def _multi_get(self, keys: Any, encoding: str | None = "utf-8", _conn: Any = None) -> Any:
        return await self._route("_multi_get", keys, encoding=encoding)

    async def _set(
        self, key: Any, value: Any, ttl: Any = None, _cas_token: Any = None, _conn: Any = None
    ) -> Any:
        return await self._route("_set", key, value, ttl=ttl, _cas_token=_cas_token, touched=[key])

    async def _multi_set(self, pairs: Any, ttl: Any = None, _conn: Any = None) -> Any:
        pairs = list(pairs)
        return await self._route("_multi_set", pairs, ttl=ttl, touched=[k for k, _ in pairs])

    async def _add(self, key: Any, value: Any, ttl: Any = None, _conn: Any = None) -> Any:
        return await self._route("_add", key, value, ttl=ttl, touched=[key])

    async def _exists(self, key: Any, _conn: Any = None) -> Any:
        return await self._route("_exists", key)

    async def _increment(self, key: Any, delta: int, _conn: Any = None) -> Any:
        return await self._route("_increment", key, delta, touched=[key])

    async def _expire(self, key: Any, ttl: Any, _conn: Any = None) -> Any:
        return await self._route("_expire", key, ttl=ttl, touched=[key])

    async def _delete(self, key: Any, _conn: Any = None) -> Any:
        return await self._route("_delete", key, touched=[key])

    async def _clear(self, namespace: str | None = None, _conn: Any = None) -> Any:
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
                self._trip(exc)
        self._journal.cleared(namespace)
        if namespace:
            await invalidate_namespace(self.fallback, namespace)
            return True
        return await self.fallback._clear(None)

    async def _raw(self, command: str, *args: Any, **kwargs: Any) -> Any:
        return await self._route("_raw", command, *args, **kwargs)

    async def _redlock_release(self, key: Any, value: Any) -> Any:
        return await self._route("_redlock_release", key, value, touched=[key])

    async def _close(self, *args: Any, **kwargs: Any) -> None:
        if self._probe is not None:
            self._probe.cancel()
            self._probe = None
        await self.primary.close()
        await self.fallback.close()

    # Routing, tripping, probing, recovering.

    async def _route(
        self, name: str, *args: Any, touched: Iterable[Any] | None = None, **kwargs: Any
    ) -> Any:
        if self._breaker.closed:
            primary_kwargs = kwargs
            if kwargs.get("ttl") is not None:  # as the primary takes it (memcached: whole s)
                primary_kwargs = {**kwargs, "ttl": self._backend.expiry(kwargs["ttl"])}
            for attempt in (1, 2):
                timeout = self.primary_timeout if self._answered_at else self.first_timeout
                started = time.monotonic()
                try:
                    call = getattr(self.primary, name)(*args, **primary_kwargs)
                    result = await self._timed(call, timeout)
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
                        self._trip(exc)
                    break
                else:
                    self._answered_at = time.monotonic()
                    return result
        if touched is not None:
            self._journal.touched(touched)
        return await getattr(self.fallback, name)(*args, **kwargs)

    async def _bulk(self, call: Awaitable[T]) -> T:
        """Recovery work: bounded, but not by one operation's ``primary_timeout`` (it also
        opens the connections that replace the ones the outage killed)."""
        return await self._timed(call, max(self.primary_timeout * 20, 5.0))

    async def _fresh_connections(self) -> None:
        """Close the primary's pooled connections: those opened before the outage are
        dead after a restart, and each would fail (and trip the breaker) once."""
        try:
            await self._backend.reconnect()  # the clients reconnect on demand
        except Exception as exc:  # nothing to close, or closing failed: new ones anyway
            log_once(logger, "reconnect", "could not close stale connections error=%r", exc)

    async def _timed(self, call: Awaitable[T], timeout: float | None = None) -> T:
        result: T = await self._guard.run(call, timeout or self.primary_timeout)
        return result

    def _trip(self, error: BaseException) -> None:
        old = self._breaker.state
        if self._breaker.failure():
            self._changed(old, State.OPEN, error)
        if self._probe is None or self._probe.done():
            self._probe = asyncio.ensure_future(self._probe_until_recovered())

    def _changed(self, old: State, new: State, error: BaseException | None) -> None:
        logger.warning(
            "cache primary state=%s previous=%s primary=%r error=%r", new.value, old.value,
            self.primary, error,
        )  # fmt: skip
        if self.on_state_change is not None:
            try:
                self.on_state_change(old, new, error)
            except Exception:
                logger.exception("on_state_change hook failed")

    async def _probe_until_recovered(self) -> None:
        while not self._breaker.closed:
            await asyncio.sleep(self._breaker.probe_delay())
            try:
                await self._timed(self._backend.ping(), max(self.primary_timeout, 0.25))
            except Exception:  # whatever the primary does, it is not back yet
                self._breaker.probe_failed()
                continue
            self._breaker.probe_succeeded()
            self._changed(State.OPEN, State.RECOVERING, None)
            await self._fresh_connections()
            await self._recover()

    async def _recover(self) -> None:
        """Undo the outage's changes on the primary, empty the fallback, close."""
        hold_until = asyncio.get_running_loop().time() + self.recovery_hold
        try:
            await self._drain()
            await asyncio.sleep(max(0.0, hold_until - asyncio.get_running_loop().time()))
            await self._drain()  # what was written on the fallback during the hold
            # In-process memory: clearing it does not yield, so no operation can slip in
            # between the last replay and the switch back to the primary.
            await self.fallback._clear(None)
        except Exception as exc:  # the primary failed again: stay on the fallback
            self._breaker.failure()
            self._changed(State.RECOVERING, State.OPEN, exc)
            return
        self._breaker.recovered()
        self._changed(State.RECOVERING, State.CLOSED, None)

    async def _drain(self) -> None:
        """Replay the journal on the primary until it is empty (kept on failure)."""
        while self._journal:
            taken = self._journal.take()
            try:
                await self._replay(taken)
            except BaseException:
                self._journal.put_back(taken)
                raise

    async def _replay(self, taken: Journal) -> None:
        if EVERYTHING in taken.namespaces:
            await self._bulk(self.primary._clear(None))
            return
        for namespace in taken.namespaces:
            await invalidate_namespace(self.primary, namespace, self._bulk)
        keys = list(taken.keys)
        try:
            await self._backend.delete_many(keys, self._bulk)
        except Exception as exc:
            if is_outage(exc):
                raise
            await self._drop_each(keys)  # one key the primary refuses must not block the rest

    async def _drop_each(self, keys: list[Any]) -> None:
        """Delete keys one by one; a key the primary refuses (memcached: over 250 bytes,
        accepted by the fallback during the outage) is dropped from the journal, logged
        once, and never a reason to stay off the primary."""
        for key in keys:
            try:
                await self._bulk(self.primary._delete(key))
            except Exception as exc:
                if is_outage(exc):
                    raise
                log_once(
                    logger, f"replay-refused:{type(exc).__name__}",
                    "journalled key refused by the primary, dropped key=%r error=%r", key, exc,
                )  # fmt: skip
