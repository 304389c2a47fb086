"""The in-process tier of ``NearCache``: raw values by key, bounded by bytes, each with
its own expiry, least recently used evicted first; and the tickets that keep a read
racing an invalidation from storing what the invalidation dropped. Pure: no I/O (the
clock is given).

A read from Redis is ``begin``-ed before it is sent and ``fill``-ed with its reply. An
invalidation (or a flush) that arrives in between withdraws the ticket, so the reply,
which may predate the write the invalidation announces, is returned to its caller but
never kept (the placeholder of Redis's client-side caching guide).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from typing import Any

#: What an entry costs besides its key and value (the dict slot, the tuple, the float).
OVERHEAD = 120

#: Stands for "Redis has no such key", which is worth keeping too (a cold namespace).
ABSENT: Any = object()


class LocalTier:
    """Keys to raw values (``bytes``, or ``ABSENT``), at most ``max_bytes`` in all."""

    def __init__(self, max_bytes: int, clock: Callable[[], float] = time.monotonic) -> None:
        if max_bytes <= 0:
            raise ValueError(f"max_bytes must be positive, not {max_bytes!r}")
        self.max_bytes = max_bytes
        self.nbytes = 0
        self._clock = clock
        self._entries: OrderedDict[Hashable, tuple[Any, float, int]] = OrderedDict()
        self._tickets: dict[Hashable, tuple[int, float]] = {}  # key -> (ticket, sent at)
        self._issued = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Hashable) -> Any:
        """The value kept for ``key`` (``ABSENT`` when Redis had none), else ``None``."""
        found = self._entries.get(key)
        if found is None:
            return None
        value, expires, _ = found
        if self._clock() >= expires:
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return value

    def begin(self, key: Hashable) -> int:
        """A ticket for a read of ``key`` about to be sent."""
        self._issued += 1
        self._tickets[key] = (self._issued, self._clock())
        return self._issued

    def fill(self, key: Hashable, ticket: int, value: Any, ttl: float) -> bool:
        """Keep ``value`` for ``ttl`` seconds from when its read was sent (a remaining ttl
        Redis reports was measured after that), unless an invalidation or a later read
        of ``key`` came since ``ticket``; returns whether it was kept."""
        issued, sent = self._tickets.get(key, (None, 0.0))
        if issued != ticket:
            return False
        del self._tickets[key]
        size = OVERHEAD + _size(key) + (0 if value is ABSENT else len(value))
        if sent + ttl <= self._clock() or size > self.max_bytes:
            return False
        self._drop(key)
        self._entries[key] = (value, sent + ttl, size)
        self.nbytes += size
        while self.nbytes > self.max_bytes:
            self._drop(next(iter(self._entries)))
        return True

    def invalidate(self, keys: Iterable[Hashable]) -> None:
        """Forget ``keys``, and refuse the replies of reads of them under way."""
        for key in keys:
            self._drop(key)
            self._tickets.pop(key, None)

    def flush(self) -> None:
        """Forget everything, reads under way included."""
        self._entries.clear()
        self._tickets.clear()
        self.nbytes = 0

    def _drop(self, key: Hashable) -> None:
        found = self._entries.pop(key, None)
        if found is not None:
            self.nbytes -= found[2]


def _size(key: Hashable) -> int:
    return len(key) if isinstance(key, (str, bytes)) else 64


def decoded(values: list[Any], encoding: str | None) -> list[Any]:
    """Raw values as a read with ``encoding`` returns them (``None``: bytes as they are)."""
    if encoding is None:
        return values
    return [v.decode(encoding) if isinstance(v, bytes) else v for v in values]
