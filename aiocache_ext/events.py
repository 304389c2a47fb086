"""What the cache does, as events: one hook every outcome goes through, for metrics, logs
or tests. Dependency-free; while nobody listens, nothing is built and nothing is timed
(``listening`` is checked first on every path).

    from aiocache_ext import events

    stop = events.subscribe(lambda event: print(event.kind, event.route, event.reason))

Kinds (``Event.kind``) and the fields they set:

- a route request's outcome, once per request, with ``route`` (the route's path
  template, e.g. ``/items/{item_id}``, never the raw path) and ``reason`` where there is
  one: ``hit``; ``coalesced`` (a hit found after waiting for a concurrent miss);
  ``stale`` (``reason``: ``revalidate`` or ``error``); ``miss``; ``uncacheable`` (the
  response may not be stored: ``reason``); ``bypass`` (the cache did not answer:
  ``reason``, e.g. ``method=POST``, ``authorization``, ``request no-cache``);
- ``stored`` and ``aborted`` (``reason``) once a miss's entry is written or given up;
- ``backend``: a call to a backend over the network, with ``op`` (``get``,
  ``multi_get``, ``set``, ...), ``backend`` (``redis``, ``memcached``, ``near``,
  ``fallback``, ...) and ``seconds`` (in-process memory is not timed: nothing to wait for);
- ``breaker``: a ``FallbackCache`` changed state, with ``cache`` (its namespace) and
  ``state`` (``closed``, ``open``, ``recovering``);
- ``near_hit``, ``near_miss``: a ``NearCache`` read answered by its tier or not;
  ``near_flush``: its tier emptied (the invalidation link lost, a flush announced).

A listener must be quick and must not raise: it runs inline, on the request's path. One
that raises is dropped, with one log line. ``Tally`` is a listener that only counts (a
dict increment per event), for exporters that read it when metrics are collected.
"""

from __future__ import annotations

import bisect
import collections
import itertools
import logging
import math
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

logger = logging.getLogger(__name__)


class Event(NamedTuple):
    """One thing the cache did (see the module's docstring for the kinds). A named tuple:
    built on every request while someone listens, so it must cost next to nothing."""

    kind: str
    route: str | None = None
    reason: str | None = None
    op: str | None = None
    backend: str | None = None
    seconds: float | None = None
    cache: str | None = None
    state: str | None = None


Listener = Callable[[Event], None]

_listeners: tuple[Listener, ...] = ()  # replaced, never changed in place: emit reads it as is


def subscribe(listener: Listener) -> Callable[[], None]:
    """Call ``listener`` with every event from now on; returns what unsubscribes it."""
    global _listeners
    _listeners = (*_listeners, listener)

    def unsubscribe() -> None:
        _drop(listener)

    return unsubscribe


def _drop(listener: Listener) -> None:
    global _listeners
    _listeners = tuple(found for found in _listeners if found is not listener)


def listening() -> bool:
    """Whether anyone listens (checked before an event is built or a call timed)."""
    return bool(_listeners)


def route_of(scope: Mapping[str, Any]) -> str:
    """The route's path template (``/items/{item_id}``, never the raw path: metrics stay
    bounded), else the endpoint's name (routes that do not say which route they are)."""
    path = getattr(scope.get("route"), "path", None)
    if isinstance(path, str):
        return path
    return getattr(scope.get("endpoint"), "__qualname__", None) or "unknown"


def emit(
    kind: str,
    route: str | None = None,
    reason: str | None = None,
    op: str | None = None,
    backend: str | None = None,
    seconds: float | None = None,
    cache: str | None = None,
    state: str | None = None,
) -> None:
    """Tell every listener (nothing to do while nobody listens)."""
    if _listeners:
        tell(Event(kind, route, reason, op, backend, seconds, cache, state))


def tell(event: Event) -> None:
    """Tell every listener ``event``, built already (events are immutable: one built once
    per route and outcome can be told on every request)."""
    for listener in _listeners:
        try:
            listener(event)
        except Exception as exc:
            _drop(listener)
            logger.error("event listener %r raised %r: unsubscribed", listener, exc)


#: A request's outcomes (``Event.kind``), as metrics label them.
OUTCOMES = frozenset({"hit", "miss", "stale", "bypass", "uncacheable", "coalesced"})
#: Upper bounds (seconds) of the backend-duration buckets.
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Timings:
    """A histogram: counts per bucket of ``BUCKETS`` (the last: above them all), the sum."""

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)
        self.sum = 0.0

    def add(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(BUCKETS, seconds)] += 1
        self.sum += seconds

    def cumulative(self) -> list[tuple[float, int]]:
        """``(upper bound, calls at most that long)`` per bucket, ``inf`` last."""
        running = list(itertools.accumulate(self.counts))
        return list(zip((*BUCKETS, math.inf), running))


class Tally:
    """A listener that counts: requests by ``(route, outcome)``, entries by ``(route,
    stored|aborted)``, near-tier events by ``(cache, hit|miss|flush)``, each breaker's
    last state, backend calls' ``Timings`` by ``(op, backend)``. A dict increment per
    event (a request's outcome is counted under the event itself, which routes reuse);
    exporters read the counts when metrics are collected."""

    def __init__(self) -> None:
        self._outcomes: collections.Counter[Event] = collections.Counter()
        self.entries: collections.Counter[tuple[str, str]] = collections.Counter()
        self.near: collections.Counter[tuple[str, str]] = collections.Counter()
        self.breakers: dict[str, str] = {}
        self.backend: collections.defaultdict[tuple[str, str], Timings] = collections.defaultdict(
            Timings
        )

    @property
    def requests(self) -> dict[tuple[str, str], int]:
        """Requests by ``(route, outcome)``."""
        counts: collections.Counter[tuple[str, str]] = collections.Counter()
        for event, count in list(self._outcomes.items()):
            counts[event.route or "unknown", event.kind] += count
        return dict(counts)

    def __call__(self, event: Event) -> None:
        kind = event.kind
        if kind in OUTCOMES:
            self._outcomes[event] += 1
        elif kind == "backend":
            self.timed(event.op or "call", event.backend or "unknown", event.seconds or 0.0)
        elif kind == "stored" or kind == "aborted":
            self.entries[event.route or "unknown", kind] += 1
        elif kind == "breaker":
            self.breakers[event.cache or "default"] = event.state or "closed"
        elif kind.startswith("near_"):
            self.near[event.cache or "default", kind[len("near_") :]] += 1

    def timed(self, op: str, backend: str, seconds: float) -> None:
        """A backend call took ``seconds`` (an exporter may record it elsewhere too)."""
        self.backend[op, backend].add(seconds)
