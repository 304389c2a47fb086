"""Awaiting backend calls: bounded, never cancelled halfway, never past the pool.

aiomcache returns a connection to its pool when an operation is cancelled, with the
reply still unread: the next command on that connection reads the wrong reply (another
key's value). So memcached calls run as tasks of their own: a caller that times out or
is cancelled stops waiting, and the call still finishes and leaves its connection clean.

redis-py's pool raises (``MaxConnectionsError``) rather than waits once all of its
connections are in use (100 by default in redis-py 8; per node on a cluster): calls
through a ``Guard`` wait for a free connection instead, so a burst is queued, not failed.
"""

from __future__ import annotations

import asyncio
import inspect
import weakref
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from .backends.adapter import Backend

T = TypeVar("T")
_timeout_block = getattr(asyncio, "timeout", None)  # Python 3.11+


async def bounded(call: Awaitable[T], timeout: float | None) -> T:
    """``call`` cancelled after ``timeout`` seconds; on 3.11+ without a task per call."""
    if not timeout:
        return await call
    if _timeout_block is not None:
        async with _timeout_block(timeout):
            return await call
    return await asyncio.wait_for(call, timeout)


#: One semaphore per connection pool, however many guards use it.
_POOL_SLOTS: weakref.WeakKeyDictionary[Any, asyncio.Semaphore] = weakref.WeakKeyDictionary()


def _slots(pool: tuple[Any, int]) -> asyncio.Semaphore:
    holder, size = pool
    found = _POOL_SLOTS.get(holder)
    if found is None:  # made in the running loop (Python 3.9 binds it at creation)
        found = _POOL_SLOTS[holder] = asyncio.Semaphore(size)
    return found


async def shielded(call: Awaitable[T], timeout: float | None, inflight: set[Any]) -> T:
    """Await ``call`` in a task of its own (tracked in ``inflight`` until it ends)."""
    task = asyncio.ensure_future(call)
    inflight.add(task)
    task.add_done_callback(_finished(inflight))
    if timeout:
        return await asyncio.wait_for(asyncio.shield(task), timeout)
    return await asyncio.shield(task)


async def settle(inflight: set[Any], timeout: float) -> None:
    """Wait (bounded) for the calls still running, e.g. before cleaning up after them."""
    if inflight:
        await asyncio.wait(list(inflight), timeout=timeout)


def _finished(inflight: set[Any]) -> Any:
    def done(task: asyncio.Future[Any]) -> None:
        inflight.discard(task)
        if not task.cancelled():
            task.exception()  # consumed: nobody may be waiting any more

    return done


class Guard:
    """How one backend's calls are awaited: bounded by a timeout, and on memcached never
    cancelled halfway (tracked in ``inflight`` until they end)."""

    def __init__(self, backend: Backend) -> None:
        self.inflight: set[Any] = set()
        # Chosen once: this sits on every cache hit.
        self._call: Callable[[Awaitable[Any], float | None], Awaitable[Any]] = (
            self._shielded if backend.never_cancel else bounded
        )
        self._pool = backend.pool

    async def run(self, call: Awaitable[T], timeout: float | None) -> T:
        """``call``, bounded by ``timeout``; with a finite pool, once the pool has a free
        connection for it (bounded by the calls ahead of it, each by its own timeout)."""
        if self._pool is None:
            result: T = await self._call(call, timeout)
            return result
        slots = _slots(self._pool)
        try:
            await slots.acquire()
        except BaseException:
            if inspect.iscoroutine(call):
                call.close()  # never started: no "never awaited" warning
            raise
        try:
            pooled: T = await self._call(call, timeout)
            return pooled
        finally:
            slots.release()

    async def _shielded(self, call: Awaitable[T], timeout: float | None) -> T:
        return await shielded(call, timeout, self.inflight)

    async def settle(self, timeout: float = 5.0) -> None:
        """Let calls cut short by a cancellation finish, e.g. before cleaning up after them."""
        await settle(self.inflight, timeout)
