"""Prometheus metrics for aiocache_ext (the ``prometheus`` extra: ``prometheus-client``).

    from aiocache_ext.contrib import prometheus

    prometheus.enable()  # once, at start-up; then expose prometheus_client's registry

exports, from the events every outcome goes through (``aiocache_ext.events``):

- ``aiocache_ext_requests_total{route,outcome}``: requests by route (its path template,
  never the raw path) and outcome: ``hit``, ``miss``, ``stale``, ``bypass``,
  ``uncacheable``, ``coalesced``;
- ``aiocache_ext_entries_total{route,result}``: misses' entries ``stored`` or ``aborted``;
- ``aiocache_ext_backend_seconds{op,backend}``: a histogram of backend calls;
- ``aiocache_ext_breaker_state{cache}``: each ``FallbackCache``'s state (0 closed, 1 open,
  2 recovering);
- ``aiocache_ext_near_total{cache,event}``: ``NearCache`` reads ``hit`` or ``miss`` in
  the tier, and its ``flush`` es.

Events are counted as they happen by an ``events.Tally`` (a dict increment: a hit stays
within a few percent of its speed without metrics), and turned into metric families
only when the registry is collected (scraped).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from .. import events

BREAKER = {"closed": 0, "open": 1, "recovering": 2}

_enabled: dict[int, Callable[[], None]] = {}  # registry id -> disable


class TallyCollector(Collector):
    """The metric families of a ``Tally``, built when collected."""

    def __init__(self, tally: events.Tally) -> None:
        self.tally = tally

    def collect(self) -> Iterator[Metric]:
        tally = self.tally
        yield _counter("aiocache_ext_requests", "Cached routes' requests by outcome.",
                       ["route", "outcome"], tally.requests)  # fmt: skip
        yield _counter("aiocache_ext_entries", "Misses' entries stored or aborted.",
                       ["route", "result"], tally.entries)  # fmt: skip
        yield _counter("aiocache_ext_near", "NearCache tier reads (hit, miss) and flushes.",
                       ["cache", "event"], tally.near)  # fmt: skip
        timings = HistogramMetricFamily(
            "aiocache_ext_backend_seconds", "Backend calls' duration.", labels=["op", "backend"]
        )
        for labels, timing in list(tally.backend.items()):
            buckets = [(_bound(le), count) for le, count in timing.cumulative()]
            timings.add_metric(list(labels), buckets, timing.sum)
        yield timings
        states = GaugeMetricFamily(
            "aiocache_ext_breaker_state", "FallbackCache state: 0 closed, 1 open, 2 recovering.",
            labels=["cache"],
        )  # fmt: skip
        for cache, state in list(tally.breakers.items()):
            states.add_metric([cache], BREAKER.get(state, 0))
        yield states


def _counter(
    name: str, documentation: str, labels: list[str], counts: dict[tuple[str, str], int]
) -> CounterMetricFamily:
    family = CounterMetricFamily(name, documentation, labels=labels)
    for values, count in list(counts.items()):
        family.add_metric(list(values), count)
    return family


def _bound(le: float) -> str:
    return "+Inf" if le == float("inf") else repr(le)


def enable(registry: CollectorRegistry = REGISTRY) -> Callable[[], None]:
    """Export aiocache_ext's metrics to ``registry`` (prometheus_client's default one);
    returns what stops it (and unregisters them). Enabling twice is enabling once."""
    found = _enabled.get(id(registry))
    if found is not None:
        return found
    tally = events.Tally()
    collector = TallyCollector(tally)
    registry.register(collector)
    unsubscribe = events.subscribe(tally)

    def disable() -> None:
        unsubscribe()
        _enabled.pop(id(registry), None)
        registry.unregister(collector)

    _enabled[id(registry)] = disable
    return disable
