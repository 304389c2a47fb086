"""Single flight: concurrent misses for one key make one endpoint call, in this process
(``Flights``) and across every process on a shared backend (``take_turn``: the one
request per process that leads locally takes its turn at a shared lease).

A flight is owned: only the request that leads it can end it (a waiter that gave up
never ends someone else's), and it ends at the latest when the leader's task does, so a
response that the framework never sends cannot leave waiters hanging for the timeout.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Any

from .._log import log_once
from ..backends.leases import Leases

logger = logging.getLogger(__name__)

#: Ends a flight; may return the work still under way (giving a shared lease back),
#: which the caller awaits when it can.
End = Callable[..., "Awaitable[Any] | None"]


def not_leading(*_: Any) -> None:
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

    def lead(self, key: Hashable, bound: bool = True) -> End:
        """Start the flight on ``key`` and return its ``end`` (idempotent); when another
        request leads a live one, ``not_leading``. ``bound``: it also ends with the
        current task (else the caller guarantees to end it: a task of its own does)."""
        current = self._flights.get(key)
        if current is not None and time.monotonic() - current.started <= self.timeout:
            return not_leading
        flight = _Flight()
        self._flights[key] = flight

        def end(*_: Any) -> None:
            if self._flights.get(key) is flight:
                del self._flights[key]
            flight.done.set()

        task = asyncio.current_task()
        if bound and task is not None:
            task.add_done_callback(end)
        return end


#: How long a shared lease lives unless its leader renews it (every third of it): a
#: leader that dies is taken over by a waiter at most this long after.
LEASE_TTL = 5.0
LEASE_SUFFIX = "|lease"

Look = Callable[[], Awaitable[tuple[Any, "str | None"]]]


class Lease:
    """A shared lease this request holds: renewed while it lives, given back once."""

    def __init__(self, leases: Leases, key: Any, owner: str) -> None:
        self.leases, self.key, self.owner = leases, key, owner
        self._renewing = asyncio.ensure_future(self._renew())
        self._ended = False

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(LEASE_TTL / 3)
            try:
                if not await self.leases.renew(self.key, self.owner, LEASE_TTL):
                    return  # lost (expired, or the backend restarted): nothing to renew
            except Exception as exc:
                log_once(
                    logger, f"lease-renew:{type(exc).__name__}", "lease not renewed error=%r", exc
                )
                return

    def end(self, *_: Any) -> Awaitable[Any] | None:
        """Stop renewing and give the lease back; returns that work (a task), once."""
        if self._ended:
            return None
        self._ended = True
        self._renewing.cancel()
        return spawn(self.leases.give_back(self.key, self.owner))


_BACKGROUND: set[asyncio.Future[Any]] = set()


def spawn(call: Awaitable[Any], failed: str = "lease not given back") -> asyncio.Future[Any]:
    """A task that runs to its end even if nobody awaits it; its failure is logged."""
    task = asyncio.ensure_future(call)
    _BACKGROUND.add(task)

    def done(finished: asyncio.Future[Any]) -> None:
        _BACKGROUND.discard(finished)
        error = None if finished.cancelled() else finished.exception()
        if error is not None:
            log_once(logger, f"{failed}:{type(error).__name__}", "%s error=%r", failed, error)

    task.add_done_callback(done)
    return task


async def take_turn(
    leases: Leases, key: str, timeout: float, look: Look
) -> tuple[Any, str | None, Lease | None]:
    """This process's turn at a missing ``key`` among all processes: the entry, if
    another process stored it meanwhile (``look`` finds it), else the lease to compute
    it (``None`` when waiting took ``timeout`` seconds or the backend failed: compute
    it anyway). Returns the entry, its namespace token, and the lease."""
    built = leases.key(key + LEASE_SUFFIX)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    token: str | None = None
    try:
        while True:
            owner = await leases.take(built, LEASE_TTL)
            if owner is not None:
                lease = _held(leases, built, owner)
                found, token = await look()  # stored between our miss and the lease?
                if found is not None:
                    lease.end()
                    return found, token, None
                return None, token, lease
            remaining = deadline - loop.time()
            if remaining <= 0:
                log_once(logger, "lease-timeout", "waited lock_timeout for another process")
                return None, token, None
            await leases.released(built, min(remaining, LEASE_TTL))
            found, token = await look()
            if found is not None:
                return found, token, None
    except Exception as exc:
        log_once(logger, f"lease:{type(exc).__name__}", "shared single flight failed error=%r", exc)
        return None, token, None


async def claim(leases: Leases, key: str) -> Lease | None:
    """The shared lease on ``key`` if nobody holds it, without waiting: a stale entry's
    one refresh among all processes. ``None``: another process refreshes it (or the
    backend failed: the stale entry is served meanwhile either way)."""
    built = leases.key(key + LEASE_SUFFIX)
    try:
        owner = await leases.take(built, LEASE_TTL)
    except Exception as exc:
        log_once(logger, f"lease:{type(exc).__name__}", "shared single flight failed error=%r", exc)
        return None
    return None if owner is None else _held(leases, built, owner)


def _held(leases: Leases, built: Any, owner: str) -> Lease:
    """A lease just taken, given back at the latest when the current task ends."""
    lease = Lease(leases, built, owner)
    task = asyncio.current_task()
    if task is not None:
        task.add_done_callback(lease.end)
    return lease


def both(first: End, second: End) -> End:
    """An ``end`` that ends two things (the second's pending work is returned)."""

    def end(*args: Any) -> Awaitable[Any] | None:
        first(*args)
        return second(*args)

    return end


async def ended(end: End) -> None:
    """Call ``end`` and wait for what it leaves under way (failures are logged there)."""
    pending = end()
    if pending is not None:
        await asyncio.wait([asyncio.ensure_future(pending)])
