"""How ``FallbackCache`` gets back to its primary after an outage.

A trip opens the breaker and starts one background probe (``PING``; memcached
``version``) with backoff. Once the primary answers: its pooled connections are
replaced (those from before the outage are dead after a restart, and each would trip
the breaker once more), the journal of what the outage changed is replayed there, the
fallback keeps serving for ``hold`` seconds (other workers replay theirs meanwhile),
the journal is replayed again, the fallback emptied, and the breaker closes. A key the
primary refuses is dropped with one log line; a primary that fails again reopens it.

Each replay takes the journal once: changes keep coming meanwhile, and a replay that
waited for an empty journal never ended while they came faster than it ran (an
invalidation every 0.2 s did, on a busy machine). The last replay holds changes back
instead (``settled``), so nothing written to the fallback misses it; reads go on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiocache.base import BaseCache

from .._log import log_once
from .adapter import Backend, backend_of
from .breaker import Breaker, State
from .errors import is_outage
from .journal import EVERYTHING, Journal
from .namespaces import invalidate_namespace

logger = logging.getLogger(__name__)
T = TypeVar("T")
#: ``call`` awaited within ``timeout`` seconds, as every call to the primary is.
Timed = Callable[[Awaitable[Any], float], Awaitable[Any]]
Changed = Callable[[State, State, "BaseException | None"], None]


class Recovery:
    """The breaker, the journal and the probe of one ``FallbackCache``."""

    def __init__(
        self,
        primary: BaseCache,
        fallback: BaseCache,
        backend: Backend,
        timed: Timed,
        *,
        breaker: Breaker,
        journal: Journal,
        hold: float,
        primary_timeout: float,
        changed: Changed,
    ) -> None:
        self.primary = primary
        self.fallback = fallback
        self.backend = backend
        self.breaker = breaker
        self.journal = journal
        self.hold = hold
        self._timed = timed
        self._primary_timeout = primary_timeout
        self._changed = changed
        self._probe: asyncio.Task[None] | None = None
        self._last_replay: asyncio.Future[None] | None = None  # set while it runs

    def trip(self, error: BaseException) -> None:
        """The primary failed: open (once) and make sure a probe runs."""
        old = self.breaker.state
        if self.breaker.failure():
            self._changed(old, State.OPEN, error)
        if self._probe is None or self._probe.done():
            self._probe = asyncio.ensure_future(self._probe_until_recovered())

    async def settled(self) -> None:
        """Returns once no last replay runs. A change on the fallback waits for it (one
        replay, each of its calls bounded): made during it, the change would miss it,
        and the primary would serve what it replaced."""
        if self._last_replay is not None:
            await asyncio.shield(self._last_replay)

    def stop(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
            self._probe = None

    async def _probe_until_recovered(self) -> None:
        while not self.breaker.closed:
            await asyncio.sleep(self.breaker.probe_delay())
            try:
                await self._timed(self.backend.ping(), max(self._primary_timeout, 0.25))
            except Exception:  # whatever the primary does, it is not back yet
                self.breaker.probe_failed()
                continue
            self.breaker.probe_succeeded()
            self._changed(State.OPEN, State.RECOVERING, None)
            await self._fresh_connections()
            await self._recover()

    async def _fresh_connections(self) -> None:
        try:
            await self.backend.reconnect()  # the clients reconnect on demand
        except Exception as exc:  # nothing to close, or closing failed: new ones anyway
            log_once(logger, "reconnect", "could not close stale connections error=%r", exc)

    async def _recover(self) -> None:
        """Undo the outage's changes on the primary, empty the fallback, close."""
        loop = asyncio.get_running_loop()
        hold_until = loop.time() + self.hold
        last: asyncio.Future[None] | None = None
        try:
            await self._drain()
            await asyncio.sleep(max(0.0, hold_until - loop.time()))
            await self._drain()  # what was written on the fallback during the hold
            last = self._last_replay = loop.create_future()
            await self._drain()  # what came meanwhile; changes wait from now on
            # In-process memory: emptying it does not yield, so no operation can slip in
            # between the last replay and the switch back to the primary.
            await backend_of(self.fallback).empty()
        except Exception as exc:  # the primary failed again: stay on the fallback
            self.breaker.failure()
            self._changed(State.RECOVERING, State.OPEN, exc)
        else:
            self.breaker.recovered()
            self._changed(State.RECOVERING, State.CLOSED, None)
        finally:  # the breaker is set: the changes held back go where it says
            if last is not None:
                last.set_result(None)
                self._last_replay = None

    async def _drain(self) -> None:
        """Replay what the journal holds now on the primary (kept on failure)."""
        taken = self.journal.take()
        if not taken:
            return
        try:
            await self._replay(taken)
        except BaseException:
            self.journal.put_back(taken)
            raise

    async def _replay(self, taken: Journal) -> None:
        if EVERYTHING in taken.namespaces:
            await self._bulk(self.primary._clear(None))
            return
        for namespace in taken.namespaces:
            await invalidate_namespace(self.primary, namespace, self._bulk)
        keys = list(taken.keys)
        try:
            await self.backend.delete_many(keys, self._bulk)
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

    async def _bulk(self, call: Awaitable[T]) -> T:
        """Recovery work: bounded, but not by one operation's ``primary_timeout`` (it also
        opens the connections that replace the ones the outage killed)."""
        result: T = await self._timed(call, max(self._primary_timeout * 20, 5.0))
        return result
