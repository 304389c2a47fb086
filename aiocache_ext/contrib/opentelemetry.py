"""OpenTelemetry metrics for aiocache_ext (the ``opentelemetry`` extra:
``opentelemetry-api``; bring the SDK and exporter your service already uses).

    from aiocache_ext.contrib import opentelemetry

    opentelemetry.enable()  # once, at start-up: the global meter provider, or pass one

The same metrics as ``contrib.prometheus``, from the same events, as OpenTelemetry
instruments: ``aiocache_ext.requests`` (attributes ``route``, ``outcome``),
``aiocache_ext.entries`` (``route``, ``result``), ``aiocache_ext.near`` (``cache``,
``event``), all observable counters read from an ``events.Tally`` when metrics are
collected; ``aiocache_ext.breaker.state`` (an observable gauge: 0 closed, 1 open, 2
recovering; ``cache``) and ``aiocache_ext.backend.duration`` (a histogram, seconds;
``op``, ``backend``). A Prometheus exporter names them ``aiocache_ext_requests_total``...
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from opentelemetry import metrics

from .. import events
from .prometheus import BREAKER


class _Recording(events.Tally):
    """A ``Tally`` whose backend timings go to an OpenTelemetry histogram."""

    def __init__(self, durations: metrics.Histogram) -> None:
        super().__init__()
        self.durations = durations
        self._where: dict[tuple[str, str], dict[str, str]] = {}

    def timed(self, op: str, backend: str, seconds: float) -> None:
        where = self._where.get((op, backend))
        if where is None:
            where = self._where[op, backend] = {"op": op, "backend": backend}
        self.durations.record(seconds, where)


def enable(meter_provider: metrics.MeterProvider | None = None) -> Callable[[], None]:
    """Record aiocache_ext's metrics with ``meter_provider`` (the global one by default);
    returns what stops recording."""
    meter = (meter_provider or metrics.get_meter_provider()).get_meter("aiocache_ext")
    durations = meter.create_histogram(
        "aiocache_ext.backend.duration", unit="s", description="Backend calls' duration."
    )
    tally = _Recording(durations)

    def observe(
        counts: Callable[[], dict[tuple[str, str], int]], names: tuple[str, str]
    ) -> Callable[[Any], Iterable[metrics.Observation]]:
        def callback(options: Any) -> Iterable[metrics.Observation]:
            for values, count in list(counts().items()):
                yield metrics.Observation(count, dict(zip(names, values)))

        return callback

    def states(options: Any) -> Iterable[metrics.Observation]:
        for cache, state in list(tally.breakers.items()):
            yield metrics.Observation(BREAKER.get(state, 0), {"cache": cache})

    meter.create_observable_counter(
        "aiocache_ext.requests", [observe(lambda: tally.requests, ("route", "outcome"))],
        unit="{request}", description="Cached routes' requests by outcome.",
    )  # fmt: skip
    meter.create_observable_counter(
        "aiocache_ext.entries", [observe(lambda: tally.entries, ("route", "result"))],
        unit="{entry}", description="Misses' entries stored or aborted.",
    )  # fmt: skip
    meter.create_observable_counter(
        "aiocache_ext.near", [observe(lambda: tally.near, ("cache", "event"))],
        unit="{event}", description="NearCache tier reads (hit, miss) and flushes.",
    )  # fmt: skip
    meter.create_observable_gauge(
        "aiocache_ext.breaker.state", [states],
        description="FallbackCache state: 0 closed, 1 open, 2 recovering.",
    )  # fmt: skip
    return events.subscribe(tally)
