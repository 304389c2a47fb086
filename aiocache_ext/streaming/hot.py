"""Hits a route already answered, answered again without being worked out again.

A fresh hit on a record this process holds (in-process memory, a near tier) is prepared
once: its headers, its body, or its plain value. It is answered again as long as the
backend still holds the very objects it was prepared from (nothing was written, deleted,
expired or invalidated since: any of these replaces or drops them) and its headers still
hold (``Age`` and the freshness left count whole seconds: ``hit_headers_until``). No
I/O: the backend is asked only what it holds (``Backend.held_raw``).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

from ..backends.adapter import Backend
from .format import Manifest, StaleValue, VaryIndex
from .responses import RawHeaders, ReplayResponse
from .store import Held

#: What the prepared hits of one route may keep alive, in bytes of the records they were
#: prepared from (a near tier's evicted values among them).
BUDGET = 256 * 1024

#: What a route's entry or a record of it is kept as in memory, never a plain value.
_RECORDS = (str, bytes, bytearray, Manifest, VaryIndex, StaleValue)

#: The answer of a plain value memory keeps as the object itself: that object, whichever
#: it is now. Nothing of it is kept here (it could be any size, and replaced): only
#: where to look.
_HELD_OBJECT: Any = object()


class _Hot(NamedTuple):
    keys: list[Any]  # the built keys of the record and of the namespace token
    raws: list[Any]  # what the backend held under them when the hit was prepared (if sized)
    until: float  # when its headers change, or its entry stops being fresh
    manifest: Manifest | None  # None: a plain value
    headers: tuple[tuple[bytes, bytes], ...]
    answer: Any  # the body (a list of one inline body), the plain value, or _HELD_OBJECT


class HotHits:
    """The prepared hits of one route, by key."""

    def __init__(self, backend: Backend, budget: int = BUDGET) -> None:
        self._backend = backend
        self._budget = budget
        self._hits: dict[str, _Hot] = {}
        self._nbytes = 0

    def answer(self, key: str, now: float) -> Any:
        """The prepared hit for ``key`` (a new ``ReplayResponse`` or the plain value),
        ``None`` when there is none still good at ``now``."""
        hot = self._hits.get(key)
        if hot is None or now >= hot.until:
            return None
        raws = self._backend.held_raw(hot.keys)
        if raws is None:
            return None
        if hot.answer is _HELD_OBJECT:
            raw = raws[0]
            return None if raw is None or isinstance(raw, _RECORDS) else raw
        if raws[0] is not hot.raws[0] or raws[1] is not hot.raws[1]:
            return None
        if hot.manifest is None:
            return hot.answer
        # The list is the response's own: middleware and FastAPI add to it.
        return ReplayResponse(hot.manifest, list(hot.headers), None, hot.answer, None)

    def keep_response(
        self, key: str, held: Held, until: float, headers: RawHeaders, body: list[bytes]
    ) -> None:
        """Prepare a response to the manifest ``held`` (``headers``, its inline ``body``),
        its headers good until ``until``."""
        if _sized(held.raws):
            self._keep(key, _Hot(held.keys, held.raws, until, held.entry, tuple(headers), body))

    def keep_value(self, key: str, held: Held, until: float | None, value: Any) -> None:
        """Prepare the plain ``value`` of ``held``, fresh until ``until``."""
        until = math.inf if until is None else until
        if _sized(held.raws):
            self._keep(key, _Hot(held.keys, held.raws, until, None, (), value))
        elif value is held.raws[0]:  # the object memory keeps, as it keeps it
            self._keep(key, _Hot(held.keys, [], until, None, (), _HELD_OBJECT))

    def _keep(self, key: str, hot: _Hot) -> None:
        old = self._hits.pop(key, None)
        if old is not None:
            self._nbytes -= _size(old.raws)
        size = _size(hot.raws)
        if self._nbytes + size > self._budget:  # rarely: start again
            self._hits.clear()
            self._nbytes = 0
        if size <= self._budget:
            self._hits[key] = hot
            self._nbytes += size


def _sized(raws: list[Any]) -> bool:
    """Whether every record is text or bytes. An object kept in memory as it is has no
    known size: what a prepared hit kept alive after it was replaced could be any size."""
    return all(isinstance(raw, (str, bytes)) for raw in raws)


def _size(raws: list[Any]) -> int:
    return sum(len(raw) for raw in raws) if raws else 64  # nothing held: the key's slot
