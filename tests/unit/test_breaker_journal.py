"""The circuit breaker and the outage journal as pure logic, with a fake clock."""

from __future__ import annotations

import pytest

from aiocache_ext.backends.breaker import Breaker, State
from aiocache_ext.backends.journal import EVERYTHING, Journal


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_breaker_opens_once_and_backs_off_within_bounds() -> None:
    clock = Clock()
    breaker = Breaker(min_backoff=0.05, max_backoff=1.0, clock=clock)
    assert breaker.closed
    assert breaker.failure() is True  # the change is reported once...
    assert breaker.failure() is False  # ...not per failing operation
    assert breaker.state is State.OPEN
    assert breaker.probe_delay() == pytest.approx(0.05)
    delays = []
    for _ in range(8):
        breaker.probe_failed()
        delays.append(breaker.probe_delay())
    assert delays == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0, 1.0])
    clock.now += 5
    assert breaker.probe_delay() == 0.0


def test_breaker_recovers_through_recovering() -> None:
    breaker = Breaker(clock=Clock())
    breaker.failure()
    breaker.probe_succeeded()
    assert breaker.state is State.RECOVERING
    assert not breaker.closed  # the fallback serves until the replay is done
    breaker.recovered()
    assert breaker.closed
    breaker.failure()
    assert breaker.backoff == breaker.min_backoff  # a new outage starts from the minimum


@pytest.mark.parametrize(("low", "high"), [(0, 1), (2, 1), (-1, 1)])
def test_breaker_rejects_bad_backoffs(low: float, high: float) -> None:
    with pytest.raises(ValueError, match="backoff"):
        Breaker(low, high)


def test_journal_records_keys_and_namespaces() -> None:
    journal = Journal(limit=3, overflow_namespace="app")
    assert not journal
    journal.touched(["a", "b"])
    journal.cleared("users")
    journal.cleared(None)
    taken = journal.take()
    assert not journal
    assert taken.keys == {"a", "b"}
    assert taken.namespaces == {"users", EVERYTHING}
    journal.touched(["c"])
    journal.put_back(taken)
    assert journal.keys == {"a", "b", "c"}


@pytest.mark.parametrize(("namespace", "cleared"), [("app", "app"), (None, EVERYTHING)])
def test_journal_overflow_falls_back_to_the_namespace(
    namespace: str | None, cleared: object
) -> None:
    journal = Journal(limit=3, overflow_namespace=namespace)
    journal.touched(["a", "b", "c"])
    assert journal.keys == {"a", "b", "c"}
    journal.touched(["d"])
    assert journal.keys == set()
    assert journal.namespaces == {cleared}
