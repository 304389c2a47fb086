"""The circuit breaker of ``FallbackCache`` as a pure state machine with an injected clock.

CLOSED: the primary serves. A failure opens the circuit: OPEN, every operation goes to
the fallback without touching the primary, and a probe is due after a backoff that
doubles on each failed probe (bounded). A probe that answers moves to RECOVERING (the
fallback still serves while outage invalidations are replayed on the primary), then
``recovered`` closes the circuit. No awaits here: the timing is unit-testable.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable


class State(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    RECOVERING = "recovering"


class Breaker:
    def __init__(
        self,
        min_backoff: float = 0.05,
        max_backoff: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0 < min_backoff <= max_backoff:
            raise ValueError("need 0 < min_backoff <= max_backoff")
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self.clock = clock
        self.state = State.CLOSED
        self.backoff = min_backoff
        self.next_probe_at = 0.0

    @property
    def closed(self) -> bool:
        """Whether operations may use the primary."""
        return self.state is State.CLOSED

    def failure(self) -> bool:
        """The primary failed an operation (or a recovery step); True if this opened it."""
        was_open = self.state is State.OPEN
        self.state = State.OPEN
        self.backoff = self.min_backoff
        self.next_probe_at = self.clock() + self.backoff
        return not was_open

    def probe_failed(self) -> None:
        self.backoff = min(self.backoff * 2, self.max_backoff)
        self.next_probe_at = self.clock() + self.backoff

    def probe_succeeded(self) -> None:
        self.state = State.RECOVERING

    def recovered(self) -> None:
        self.state = State.CLOSED

    def probe_delay(self) -> float:
        """Seconds until the next probe is due."""
        return max(0.0, self.next_probe_at - self.clock())
