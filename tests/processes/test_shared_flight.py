"""One origin call across processes: 4 uvicorn workers on one Redis (or memcached), 200
concurrent cold requests spread over them, the leader's worker SIGKILLed mid-stream, and
200 requests for a stale entry: one refresh among all the workers."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import redis

from ..servers import MemcachedServer, RedisServer
from .workers import Uvicorn

pytestmark = [pytest.mark.redis, pytest.mark.workers]

HERE = Path(__file__).resolve().parent
BODY = b"".join(bytes([i]) * 50_000 for i in range(20))


class Workers:
    """``count`` uvicorn processes of flight_app.py, each on its own port."""

    def __init__(
        self, redis_port: int, count: int, chunk_delay: float, memcached_port: int | None = None
    ) -> None:
        env = {"REDIS_PORT": str(redis_port), "CHUNK_DELAY": str(chunk_delay)}
        if memcached_port is not None:
            env["MEMCACHED_PORT"] = str(memcached_port)
        self.processes = [Uvicorn("flight_app:app", HERE, env, "/pid") for _ in range(count)]
        for process in self.processes:
            process.wait_ready(30)
        self.ports = [process.port for process in self.processes]

    def stop(self) -> None:
        for process in self.processes:
            process.stop()


@pytest.fixture
def server(redis_factory: object) -> RedisServer:
    return redis_factory()  # type: ignore[operator, no-any-return]


def commands(client: redis.Redis) -> dict[str, int]:
    stats = client.info("commandstats")
    return {name.removeprefix("cmdstat_"): s["calls"] for name, s in stats.items()}


def memcached_gets(server: MemcachedServer) -> int:
    """How many ``get`` commands memcached has answered (``stats cmd_get``)."""
    with socket.create_connection((server.host, server.port), timeout=5) as sock:
        sock.sendall(b"stats\r\n")
        reply = b""
        while not reply.endswith(b"END\r\n"):
            reply += sock.recv(65536)
    for line in reply.decode().splitlines():
        if line.startswith("STAT cmd_get "):
            return int(line.split()[2])
    raise AssertionError("no cmd_get in memcached stats")


async def get_all(
    ports: list[int], count: int, path: str = "/report"
) -> list[httpx.Response | BaseException]:
    limits = httpx.Limits(max_connections=count)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        requests = [
            client.get(f"http://127.0.0.1:{ports[i % len(ports)]}{path}") for i in range(count)
        ]
        return await asyncio.gather(*requests, return_exceptions=True)


@pytest.fixture
def workers(server: RedisServer) -> Iterator[Workers]:
    started = Workers(server.port, 4, chunk_delay=0.05)
    try:
        yield started
    finally:
        started.stop()


async def test_200_cold_requests_on_4_workers_make_one_call(
    server: RedisServer, workers: Workers
) -> None:
    stats = redis.Redis(host=server.host, port=server.port)
    stats.config_resetstat()
    responses = await get_all(workers.ports, 200)
    assert all(isinstance(r, httpx.Response) for r in responses), responses[:3]
    assert [r.content == BODY for r in responses] == [True] * 200  # type: ignore[union-attr]
    assert stats.get("test:calls") == b"1"
    # The wait cost a few commands per process, not a poll per waiter per interval: the
    # leader streams for about 1 s, and 200 waiters polling every 20 ms would be 10,000.
    sent = commands(stats)
    lease_commands = sent.get("set", 0) + sent.get("exists", 0) + sent.get("get", 0)
    assert lease_commands < 100, sent
    stats.close()


@pytest.mark.memcached
async def test_200_cold_requests_on_4_workers_on_memcached_make_one_call(
    server: RedisServer, memcached_factory: Callable[[], MemcachedServer]
) -> None:
    memcached = memcached_factory()
    workers = Workers(server.port, 4, chunk_delay=0.05, memcached_port=memcached.port)
    stats = redis.Redis(host=server.host, port=server.port)  # counts the endpoint's calls
    try:
        gets_before = memcached_gets(memcached)
        responses = await get_all(workers.ports, 200)
    finally:
        workers.stop()
    assert all(isinstance(r, httpx.Response) for r in responses), responses[:3]
    assert [r.content == BODY for r in responses] == [True] * 200  # type: ignore[union-attr]
    assert stats.get("test:calls") == b"1"
    # memcached has no notifications: one waiter per process polls, backing off from
    # 20 ms to 250 ms, while the others wait in their process. memcached counts a get
    # per key: each replay reads at most the manifest, the token and 16 segments; a
    # poll per waiter every 20 ms for the 1 s stream would add 10,000 more.
    replays = 200 * (2 + len(BODY) // (64 * 1024) + 1)
    assert memcached_gets(memcached) - gets_before < replays + 1_000
    stats.close()


async def test_a_stale_entry_is_refreshed_once_by_4_workers(
    server: RedisServer, workers: Workers
) -> None:
    stats = redis.Redis(host=server.host, port=server.port)
    first = await get_all(workers.ports[:1], 1, "/stale")
    assert [(r.headers["x-cache"], r.content) for r in first] == [("MISS", BODY)]  # type: ignore[union-attr]
    stored_at = time.time()
    await asyncio.sleep(max(0.0, stored_at + 1.05 - time.time()))  # past its ttl of 1 s
    responses = await get_all(workers.ports, 200, "/stale")
    assert all(isinstance(r, httpx.Response) for r in responses), responses[:3]
    served = [(r.status_code, r.headers["x-cache"], r.content) for r in responses]  # type: ignore[union-attr]
    # Answered from the entry, stale (or fresh once the refresh is stored), never waiting
    # for the origin; the 1 s refresh ran once among the 4 workers.
    assert {(status, body) for status, _, body in served} == {(200, BODY)}
    assert {mark for _, mark, _ in served} <= {"STALE", "HIT"}
    assert "STALE" in {mark for _, mark, _ in served}
    deadline = time.monotonic() + 30
    while stats.get("test:calls") != b"2" or stats.exists("flight:stale|lease"):
        assert time.monotonic() < deadline, stats.get("test:calls")
        await asyncio.sleep(0.05)
    fresh = await get_all(workers.ports, 8, "/stale")
    assert {r.headers["x-cache"] for r in fresh} == {"HIT"}  # type: ignore[union-attr]
    assert stats.get("test:calls") == b"2"
    stats.close()


def wait_for_leader(stats: redis.Redis) -> None:
    deadline = time.monotonic() + 30
    while stats.get("test:leader") is None:
        assert time.monotonic() < deadline, "no endpoint call"
        time.sleep(0.05)


async def test_the_leader_killed_mid_stream_is_taken_over(server: RedisServer) -> None:
    workers = Workers(server.port, 4, chunk_delay=0.25)  # a 5 s stream
    stats = redis.Redis(host=server.host, port=server.port)
    try:
        first = asyncio.ensure_future(get_all(workers.ports, 40))
        await asyncio.get_running_loop().run_in_executor(None, wait_for_leader, stats)
        await asyncio.sleep(0.5)  # mid-stream
        os.kill(int(stats.get("test:leader") or 0), signal.SIGKILL)
        responses = await first
    finally:
        workers.stop()
        stats_calls = stats.get("test:calls")
        stats.close()
    failed = [r for r in responses if not isinstance(r, httpx.Response)]
    served = [r for r in responses if isinstance(r, httpx.Response)]
    # The leader's own clients lose their connection (10 of 40: one worker in four);
    # every other request is served whole, by the one waiter that took over.
    assert len(failed) <= 10, failed[:3]
    assert served and all(r.status_code == 200 and r.content == BODY for r in served)
    assert stats_calls == b"2"


@pytest.mark.parametrize("failing", ["raise", "503"])
async def test_a_failing_origin_is_answered_stale_inside_the_window_and_with_its_error_after(
    server: RedisServer, workers: Workers, failing: str
) -> None:
    stats = redis.Redis(host=server.host, port=server.port)
    first = await get_all(workers.ports[:1], 1, "/fragile")
    assert [r.content for r in first] == [BODY]  # type: ignore[union-attr]
    stored_at = time.time()
    stats.set("test:failing", failing)
    await asyncio.sleep(max(0.0, stored_at + 1.05 - time.time()))  # past its ttl of 1 s
    inside = await get_all(workers.ports, 40, "/fragile")
    served = {(r.status_code, r.headers["x-cache"], r.content) for r in inside}  # type: ignore[union-attr]
    assert served == {(200, "STALE", BODY)}
    await asyncio.sleep(max(0.0, stored_at + 1 + 3.05 - time.time()))  # past the window
    after = await get_all(workers.ports, 8, "/fragile")
    expected = 500 if failing == "raise" else 503
    assert {r.status_code for r in after} == {expected}  # type: ignore[union-attr]
    stats.close()
