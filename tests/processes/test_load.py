"""A bounded load test: wrk against two uvicorn workers, with Redis frozen mid-run."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from ..servers import RedisServer
from . import wrk
from .workers import Worker, wait_closed

pytestmark = [pytest.mark.redis, pytest.mark.load, pytest.mark.workers]


@pytest.fixture
def two_workers(
    redis_factory: Callable[[], RedisServer],
) -> Iterator[tuple[RedisServer, list[Worker]]]:
    server = redis_factory()
    started = [Worker(server.port), Worker(server.port)]
    try:
        for worker in started:
            worker.wait_ready()
            for path in ("/items/1", "/blob"):  # warm: entries stored in Redis
                assert worker.client.get(path).status_code == 200
        yield server, started
    finally:
        for worker in started:
            worker.stop()


def url(worker: Worker, path: str) -> str:
    return f"http://127.0.0.1:{worker.port}{path}"


def test_no_request_fails_while_redis_is_frozen(
    two_workers: tuple[RedisServer, list[Worker]],
) -> None:
    server, workers = two_workers
    normal = [wrk.start(url(w, "/items/1"), seconds=2) for w in workers]
    assert [wrk.finish(run).errors for run in normal] == [0, 0]

    server.pause()
    try:
        during = [wrk.finish(run) for run in
                  [wrk.start(url(w, "/items/1"), seconds=3) for w in workers]]  # fmt: skip
    finally:
        server.resume()
    assert [r.errors for r in during] == [0, 0], [r.output for r in during]
    assert all(r.requests > 100 for r in during)
    assert max(r.p99 for r in during) < 1.0  # bounded: no request waits on the frozen Redis
    wait_closed(*(w.client for w in workers))
    after = [wrk.finish(wrk.start(url(w, "/blob"), seconds=1)) for w in workers]
    assert [r.errors for r in after] == [0, 0]


def test_a_burst_of_1000_connections_on_a_cold_key_makes_one_call(
    redis_factory: Callable[[], RedisServer],
) -> None:
    """Ten times redis-py's default pool: no error, and one call of the slow endpoint."""
    server = redis_factory()
    worker = Worker(server.port, primary_timeout=0.25)
    try:
        worker.wait_ready()
        burst = wrk.finish(wrk.start(url(worker, "/slow/cold"), seconds=3, connections=1000))
        assert burst.errors == 0, burst.output
        assert burst.requests > 1000
        health = worker.client.get("/health/cache").json()
        assert health["computed"]["slow"] == 1
        assert health["state"] == "closed"  # never taken for an outage
    finally:
        worker.stop()
