"""Two uvicorn workers answering hits from their own near tier (prepared hits included):
a write and invalidation through one is served by the other within the link's bound, and
from then on only the new version is."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from ..servers import RedisServer
from .workers import Uvicorn

pytestmark = [pytest.mark.workers, pytest.mark.redis]

HERE = Path(__file__).resolve().parent
LIMIT = 10.0  # seconds: generous for what the link announces within milliseconds


@pytest.fixture
def workers(redis_factory: Callable[[], RedisServer]) -> Iterator[list[httpx.Client]]:
    server = redis_factory()
    env = {"REDIS_PORT": str(server.port)}
    # One Host for both, as behind a load balancer: entries are keyed by it.
    started = [Uvicorn("near_app:app", HERE, env, "/ready", {"Host": "app.test"}) for _ in "ab"]
    try:
        for worker in started:
            worker.wait_ready()
            deadline = time.monotonic() + LIMIT
            while worker.client.get("/ready").status_code != 200:
                assert time.monotonic() < deadline, "a worker's link never came up"
                time.sleep(0.05)
        yield [worker.client for worker in started]
    finally:
        for worker in started:
            worker.stop()


def test_a_write_through_one_worker_reaches_the_others_near_hits(
    workers: list[httpx.Client],
) -> None:
    a, b = workers
    first = a.get("/item")
    assert first.headers["x-cache"] == "MISS"
    for client in (a, b, a, b, b, b):  # hits, from each worker's tier
        hit = client.get("/item")
        assert (hit.headers["x-cache"], hit.json()) == ("HIT", first.json())
    assert a.post("/write").json() == {"version": 1}
    deadline = time.monotonic() + LIMIT
    while (seen := b.get("/item").json())["version"] != 1:
        assert time.monotonic() < deadline, f"worker b still serves {seen}"
        time.sleep(0.005)
    for client in (b, a, b, a, b):
        assert client.get("/item").json() == seen  # the new entry, never the old again
