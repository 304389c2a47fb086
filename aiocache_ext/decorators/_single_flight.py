"""In-process single flight: concurrent misses for one key make one endpoint call.

A flight is owned: only the request that leads it can end it (a waiter that gave up
never ends someone else's), and it ends at the latest when the leader's task does, so a
response that the framework never sends cannot leave waiters hanging for the timeout.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Hashable
from typing import Any

from .._log import log_once

logger = logging.getLogger(__name__)

End = Callable[..., None]


def _nothing(*_: Any) -> None:
    """What a request that does not lead a flight calls to end it."""


class _Flight:
    __slots__ = ("done", "started")

    def __init__(self) -> None:
        self.done = asyncio.Event()
        self.started = time.monotonic()


class Flights:
    """The flights of one decorated route, by key."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._flights: dict[Hashable, _Flight] = {}

    def __len__(self) -> int:
        return len(self._flights)

    async def wait(self, key: Hashable) -> bool:
        """Wait (at most ``timeout``) for the flight on ``key``; True when there was one."""
        current = self._flights.get(key)
        if current is None or time.monotonic() - current.started > self.timeout:
            return False
        try:
            await asyncio.wait_for(current.done.wait(), self.timeout)
        except asyncio.TimeoutError:
            log_once(logger, "flight-timeout", "waited lock_timeout for a concurrent miss")
        return True

    def lead(self, key: Hashable) -> End:
        """Start the flight on ``key`` and return its ``end`` (idempotent); when another
        request leads a live one, ``end`` does nothing."""
        current = self._flights.get(key)
        if current is not None and time.monotonic() - current.started <= self.timeout:
            return _nothing
        flight = _Flight()
        self._flights[key] = flight

        def end(*_: Any) -> None:
            if self._flights.get(key) is flight:
                del self._flights[key]
            flight.done.set()

        task = asyncio.current_task()
        if task is not None:
            task.add_done_callback(end)
        return end
