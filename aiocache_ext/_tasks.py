"""Awaiting backend calls that must never be cancelled halfway.

aiomcache returns a connection to its pool when an operation is cancelled, with the
reply still unread: the next command on that connection reads the wrong reply (another
key's value). So memcached calls run as tasks of their own: a caller that times out or
is cancelled stops waiting, and the call still finishes and leaves its connection clean.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

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


def needs_shield(cache: Any) -> bool:
    return getattr(cache, "NAME", "") == "memcached"


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

    def __init__(self, cache: Any) -> None:
        self.inflight: set[Any] = set()
        # Chosen once: this sits on every cache hit.
        self.run: Callable[[Awaitable[Any], float | None], Awaitable[Any]] = (
            self._shielded if needs_shield(cache) else bounded
        )

    async def _shielded(self, call: Awaitable[T], timeout: float | None) -> T:
        return await shielded(call, timeout, self.inflight)

    async def settle(self, timeout: float = 5.0) -> None:
        """Let calls cut short by a cancellation finish, e.g. before cleaning up after them."""
        await settle(self.inflight, timeout)
