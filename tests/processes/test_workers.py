"""Several uvicorn workers of examples/app.py sharing one redis-server."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ..servers import RedisServer, free_port

EXAMPLES = Path(__file__).resolve().parent.parent.parent / "examples"
pytestmark = pytest.mark.redis


class Worker:
    """One uvicorn process serving examples/app.py on a free loopback port."""

    def __init__(self, redis_port: int) -> None:
        self.port = free_port()
        env = {**os.environ, "REDIS_HOST": "127.0.0.1", "REDIS_PORT": str(redis_port)}
        command = [sys.executable, "-m", "uvicorn", "app:app", "--app-dir", str(EXAMPLES),
                   "--host", "127.0.0.1", "--port", str(self.port),
                   "--log-level", "warning"]  # fmt: skip
        self.process = subprocess.Popen(command, env=env)
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=10)

    def wait_ready(self, limit: float = 20) -> None:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            assert self.process.poll() is None, "uvicorn exited at start"
            try:
                self.client.get("/health/cache")
                return
            except httpx.TransportError:
                time.sleep(0.05)
        raise AssertionError(f"uvicorn did not answer on port {self.port} in {limit}s")

    def stop(self) -> None:
        self.client.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


@pytest.fixture
def workers(redis_server: RedisServer) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    started = [Worker(redis_server.port), Worker(redis_server.port)]
    try:
        for worker in started:
            worker.wait_ready()
        a, b = (w.client for w in started)
        assert a.post("/items/0").status_code == 200  # start from an empty shop namespace
        yield a, b
    finally:
        for worker in started:
            worker.stop()


def test_a_stream_cached_by_one_worker_replays_from_the_other(
    workers: tuple[httpx.Client, httpx.Client],
) -> None:
    a, b = workers
    miss = a.get("/report.csv")
    hit = b.get("/report.csv")
    assert (miss.headers["x-cache"], hit.headers["x-cache"]) == ("MISS", "HIT")
    assert hit.content == miss.content
    assert hit.text.startswith("month,sales\n")
    assert hit.headers["x-computed-by"] == miss.headers["x-computed-by"]  # A's entry
    assert a.get("/report.csv").headers["etag"] == hit.headers["etag"]

    etag = hit.headers["etag"]
    not_modified = b.get("/report.csv", headers={"If-None-Match": etag})
    assert not_modified.status_code == 304
    assert not_modified.content == b""

    french_a = a.get("/report.csv", headers={"Accept-Language": "fr"})
    french_b = b.get("/report.csv", headers={"Accept-Language": "FR"})
    assert french_a.text.startswith("mois,ventes\n")
    assert (french_a.headers["x-cache"], french_b.headers["x-cache"]) == ("MISS", "HIT")
    assert french_b.headers["etag"] != etag


def test_invalidate_through_one_worker_is_seen_by_the_other(
    workers: tuple[httpx.Client, httpx.Client],
) -> None:
    a, b = workers
    pid_a, pid_b = (w.get("/health/cache").json()["pid"] for w in (a, b))
    first = b.get("/items/7").json()
    assert first["computed_by"] == pid_b
    assert a.get("/items/7").json() == first  # shared via Redis
    b.get("/report.csv")
    assert a.get("/report.csv").headers["x-cache"] == "HIT"

    assert a.post("/items/7").json() == {"updated": 7}
    assert b.get("/report.csv").headers["x-cache"] == "MISS"
    assert a.get("/items/7").json()["computed_by"] == pid_a  # recomputed


def wait_closed(*clients: httpx.Client, limit: float = 10) -> None:
    deadline = time.monotonic() + limit
    for client in clients:
        while client.get("/health/cache").json()["state"] != "closed":
            assert time.monotonic() < deadline, "a worker did not get back to Redis"
            time.sleep(0.05)


def test_workers_serve_through_a_redis_freeze_and_forget_what_was_invalidated(
    workers: tuple[httpx.Client, httpx.Client], redis_server: RedisServer
) -> None:
    a, b = workers
    before = b.get("/items/7").json()
    b.get("/report.csv")
    assert a.get("/report.csv").headers["x-cache"] == "HIT"
    redis_server.pause()
    try:
        for client in (a, b, a, b):  # each worker keeps serving, from its own memory
            assert client.get("/items/7").status_code == 200
            assert client.get("/report.csv").status_code == 200
        assert {c.get("/health/cache").json()["state"] for c in (a, b)} == {"open"}
        assert a.post("/items/7").json() == {"updated": 7}  # invalidated during the outage
    finally:
        redis_server.resume()
    resumed = time.time()
    wait_closed(a, b)
    for client in (b, a):  # B never saw the invalidation, yet serves nothing from before
        after = client.get("/items/7").json()
        assert after["computed_at"] > resumed > before["computed_at"]
    report = b.get("/report.csv")
    assert report.status_code == 200
    assert report.headers["x-cache"] == "MISS"
