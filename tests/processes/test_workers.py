"""Several uvicorn workers of examples/app.py sharing one redis-server."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from ..servers import Server
from .workers import Worker, wait_closed

pytestmark = pytest.mark.workers

KINDS = [
    pytest.param("redis", marks=pytest.mark.redis),
    pytest.param("memcached", marks=pytest.mark.memcached),
]


@pytest.fixture(params=KINDS)
def server(request: pytest.FixtureRequest) -> Server:
    """A fresh, empty cache server shared by the workers: one run on Redis, one on
    memcached."""
    made: Server = request.getfixturevalue(f"{request.param}_factory")()
    return made


@pytest.fixture
def workers(server: Server) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    kind = "redis" if server.name == "redis-server" else "memcached"
    # Four processes share two cores here: a 50 ms timeout can expire on a healthy
    # server, which would (rightly) keep a worker on its own memory for a second and
    # make the sharing checks below meaningless.
    started = [Worker(server.port, kind, 0.25), Worker(server.port, kind, 0.25)]
    try:
        for worker in started:
            worker.wait_ready()
        a, b = (w.client for w in started)
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


def test_workers_serve_through_a_freeze_and_forget_what_was_invalidated(
    workers: tuple[httpx.Client, httpx.Client], server: Server
) -> None:
    a, b = workers
    before = b.get("/items/7").json()
    b.get("/report.csv")
    assert a.get("/report.csv").headers["x-cache"] == "HIT"
    server.pause()
    try:
        for client in (a, b, a, b):  # each worker keeps serving, from its own memory
            assert client.get("/items/7").status_code == 200
            assert client.get("/report.csv").status_code == 200
        assert {c.get("/health/cache").json()["state"] for c in (a, b)} == {"open"}
        assert a.post("/items/7").json() == {"updated": 7}  # invalidated during the outage
    finally:
        server.resume()
    resumed = time.time()
    wait_closed(a, b)
    for client in (b, a):  # B never saw the invalidation, yet serves nothing from before
        after = client.get("/items/7").json()
        assert after["computed_at"] > resumed > before["computed_at"]
    report = b.get("/report.csv")
    assert report.status_code == 200
    assert report.headers["x-cache"] == "MISS"


def test_the_next_request_to_the_other_worker_after_a_miss_is_a_hit(
    workers: tuple[httpx.Client, httpx.Client],
) -> None:
    """Read your writes across processes: the entry is stored before the client gets
    its last byte, so a request sent right after it, to another worker, is a hit."""
    a, b = workers
    for year in range(2000, 2020):
        miss = a.get("/report.csv", params={"year": year})
        hit = b.get("/report.csv", params={"year": year})
        assert (miss.headers["x-cache"], hit.headers["x-cache"]) == ("MISS", "HIT"), year
        assert hit.content == miss.content
