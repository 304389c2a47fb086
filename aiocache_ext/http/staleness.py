"""How long past its freshness an entry may still be served (RFC 5861), and which of
those windows it is in. Pure: no I/O.

``stale-while-revalidate``: served at once, marked stale, while one refresh runs.
``stale-if-error``: served only when the refresh fails (the endpoint raises, or
answers 5xx). Both count from the end of freshness. The endpoint's own directives win
over the decorator's options (the origin knows its data); ``must-revalidate``,
``proxy-revalidate`` and ``no-cache`` from the endpoint forbid serving it stale at all.
"""

from __future__ import annotations

import dataclasses
import enum

from .cache_control import CacheControl


@dataclasses.dataclass(frozen=True)
class StaleRules:
    """Seconds past its freshness that an entry may be served: while a refresh runs
    (``while_revalidate``), and when the refresh fails (``if_error``)."""

    while_revalidate: float = 0.0
    if_error: float = 0.0

    def __post_init__(self) -> None:
        if self.while_revalidate < 0 or self.if_error < 0:
            raise ValueError(
                "stale_while_revalidate and stale_if_error are seconds, 0 or more, not "
                f"{self.while_revalidate!r} and {self.if_error!r}"
            )

    @property
    def longest(self) -> float:
        """How long past its freshness the entry must stay stored."""
        return max(self.while_revalidate, self.if_error)

    def for_response(self, cache_control: CacheControl) -> StaleRules:
        """The rules for one response, given its ``Cache-Control``."""
        if cache_control.must_revalidate or cache_control.no_cache:
            return NEVER_STALE
        swr, sie = cache_control.stale_while_revalidate, cache_control.stale_if_error
        return StaleRules(
            self.while_revalidate if swr is None else float(swr),
            self.if_error if sie is None else float(sie),
        )


NEVER_STALE = StaleRules()


class Freshness(enum.Enum):
    FRESH = "fresh"
    #: Stale, within ``stale-while-revalidate``: served, and refreshed.
    REVALIDATE = "revalidate"
    #: Stale, past that but within ``stale-if-error``: served only if a refresh fails.
    IF_ERROR = "if-error"
    EXPIRED = "expired"


def freshness(expires_at: float | None, rules: StaleRules, now: float) -> Freshness:
    """Where an entry fresh until ``expires_at`` (``None``: for ever) stands at ``now``."""
    if expires_at is None or now < expires_at:
        return Freshness.FRESH
    late = now - expires_at
    if late < rules.while_revalidate:
        return Freshness.REVALIDATE
    if late < rules.if_error:
        return Freshness.IF_ERROR
    return Freshness.EXPIRED
