"""FallbackCache against real servers that refuse, freeze, die and come back."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis
from aiocache import Cache

from aiocache_ext import FallbackCache, State

from ..helpers import state_of
from ..servers import MemcachedServer, RedisServer, Server, free_port

P99_LIMIT = 0.050
RECOVERY_LIMIT = 5.0


def p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def primary_for(server: Server | None, kind: str, port: int | None = None) -> Any:
    if kind == "redis":
        return Cache(Cache.REDIS, endpoint="127.0.0.1", port=port or server.port)  # type: ignore[union-attr]
    return Cache(Cache.MEMCACHED, endpoint="127.0.0.1", port=port or server.port)  # type: ignore[union-attr]


def read_primary(server: Server, kind: str, key: str) -> bytes | None:
    """The raw value under ``key`` on the server, read without aiocache."""
    if kind == "redis":
        client = redis.Redis(host=server.host, port=server.port)
        try:
            value = client.get(key)
            assert value is None or isinstance(value, bytes)
            return value
        finally:
            client.close()
    with socket.create_connection((server.host, server.port), timeout=2) as sock:
        sock.sendall(f"get {key}\r\n".encode())
        reply = b""
        while not reply.endswith(b"END\r\n"):
            reply += sock.recv(65536)
    if reply == b"END\r\n":
        return None
    return reply.split(b"\r\n")[1]


async def wait_for_state(cache: FallbackCache, state: State, limit: float) -> float:
    """Seconds until ``cache.state`` is ``state`` (polled; fails past ``limit``)."""
    start = time.monotonic()
    while cache.state is not state:
        assert time.monotonic() - start < limit, f"still {cache.state} after {limit}s"
        await asyncio.sleep(0.02)
    return time.monotonic() - start


async def timed_ops(cache: FallbackCache, count: int, prefix: str) -> list[float]:
    """``count`` set+get pairs; every one must succeed; returns their latencies."""
    latencies = []
    for i in range(count):
        start = time.perf_counter()
        assert await cache.set(f"{prefix}{i}", i)
        assert await cache.get(f"{prefix}{i}") == i
        latencies.append(time.perf_counter() - start)
    return latencies


async def outage(
    kind: str, server: Server, fault: Callable[[], None], heal: Callable[[], None]
) -> None:
    """The shared scenario: load before, during and after an outage, then staleness checks."""
    changes: list[tuple[State, State]] = []
    cache = FallbackCache(
        primary=primary_for(server, kind), on_state_change=lambda o, n, e: changes.append((o, n))
    )
    try:
        assert await cache.set("deleted-in-outage", "old")
        assert await cache.set("rewritten-in-outage", "old")
        assert read_primary(server, kind, "deleted-in-outage") == b'"old"'
        await timed_ops(cache, 50, "before")
        assert cache.state is State.CLOSED

        fault()
        first = time.perf_counter()
        assert await cache.get("before1") in (None, 1)  # the op that finds the outage
        assert time.perf_counter() - first < 1.0
        assert state_of(cache) is State.OPEN
        during = await timed_ops(cache, 300, "during")
        assert p99(during) < P99_LIMIT
        assert await cache.delete("deleted-in-outage") in (0, 1, True, False)
        assert await cache.set("rewritten-in-outage", "new")
        assert await cache.set("outage-only", "x")
        assert await cache.get("outage-only") == "x"

        heal()
        await wait_for_state(cache, State.CLOSED, RECOVERY_LIMIT)
        assert await cache.set("after", "landed")
        assert read_primary(server, kind, "after") == b'"landed"'
        assert await cache.get("deleted-in-outage") is None
        assert await cache.get("rewritten-in-outage") is None  # the primary's copy is stale
        assert await cache.get("outage-only") is None
        assert changes == [(State.CLOSED, State.OPEN), (State.OPEN, State.RECOVERING),
                           (State.RECOVERING, State.CLOSED)]  # fmt: skip
    finally:
        await cache.close()


@pytest.mark.redis
async def test_redis_frozen_by_sigstop(redis_factory: Callable[[], RedisServer]) -> None:
    server = redis_factory()
    await outage("redis", server, server.pause, server.resume)


@pytest.mark.redis
async def test_redis_killed_and_restarted_on_the_same_port(
    redis_factory: Callable[[], RedisServer],
) -> None:
    server = redis_factory()
    await outage("redis", server, server.kill, server.restart)


@pytest.mark.memcached
async def test_memcached_stopped_and_restarted(
    memcached_factory: Callable[[], MemcachedServer],
) -> None:
    server = memcached_factory()
    await outage("memcached", server, server.stop, server.restart)


@pytest.mark.memcached
async def test_memcached_frozen_by_sigstop(
    memcached_factory: Callable[[], MemcachedServer],
) -> None:
    server = memcached_factory()
    await outage("memcached", server, server.pause, server.resume)


@pytest.mark.parametrize("kind", ["redis", "memcached"])
async def test_starting_with_nothing_listening(kind: str, caplog: pytest.LogCaptureFixture) -> None:
    cache = FallbackCache(primary=primary_for(None, kind, port=free_port()))
    try:
        with caplog.at_level(logging.WARNING, logger="aiocache_ext"):
            latencies = await timed_ops(cache, 200, "k")
        assert cache.state is State.OPEN
        assert p99(latencies[1:]) < P99_LIMIT
        lines = [r for r in caplog.records if "state=open" in r.getMessage()]
        assert len(lines) == 1  # one line per state change, not one per operation
    finally:
        await cache.close()


@pytest.mark.redis
async def test_concurrent_load_through_a_freeze(redis_factory: Callable[[], RedisServer]) -> None:
    server = redis_factory()
    cache = FallbackCache(primary=primary_for(server, "redis"))
    opened_at: list[float] = []
    cache.on_state_change = lambda o, n, e: (
        opened_at.append(time.perf_counter()) if n is State.OPEN else None
    )
    samples: list[tuple[float, float]] = []
    errors: list[BaseException] = []

    async def worker(n: int) -> None:
        for i in range(150):
            start = time.perf_counter()
            try:
                await cache.set(f"w{n}:{i}", i)
                await cache.get(f"w{n}:{i}")
            except Exception as exc:  # counted: there must be none
                errors.append(exc)
            samples.append((start, time.perf_counter() - start))
            await asyncio.sleep(0.002)

    async def freeze() -> None:
        await asyncio.sleep(0.1)
        server.pause()
        await asyncio.sleep(0.4)
        server.resume()

    try:
        await asyncio.gather(freeze(), *(worker(n) for n in range(8)))
        assert errors == []
        assert opened_at, "the freeze was never noticed"
        after_open = [took for started, took in samples if started > opened_at[0]]
        assert len(after_open) > 100
        assert p99(after_open) < P99_LIMIT
        await wait_for_state(cache, State.CLOSED, RECOVERY_LIMIT)
    finally:
        await cache.close()


async def test_wrong_answers_are_not_outages(redis_server: RedisServer) -> None:
    cache = FallbackCache(primary=primary_for(redis_server, "redis"), namespace="answers")
    try:
        assert await cache.add("once", 1)
        with pytest.raises(ValueError, match="already exists"):
            await cache.add("once", 2)
        assert cache.state is State.CLOSED
    finally:
        await cache.clear(namespace="answers")
        await cache.close()


@pytest.mark.redis
async def test_namespace_invalidated_during_an_outage_is_dropped_before_reads(
    redis_factory: Callable[[], RedisServer],
) -> None:
    from aiocache_ext import invalidate

    server = redis_factory()
    cache = FallbackCache(primary=primary_for(server, "redis"), namespace="users")
    other = FallbackCache(primary=primary_for(server, "redis"), namespace="orders")
    try:
        assert await cache.multi_set([(f"u{i}", i) for i in range(50)])
        assert await other.set("o1", 1)
        server.pause()
        await invalidate(namespace="users", cache=cache)  # the primary cannot hear it now
        assert cache.state is State.OPEN
        assert await cache.get("u1") is None
        server.resume()
        await wait_for_state(cache, State.CLOSED, RECOVERY_LIMIT)
        assert [await cache.get(f"u{i}") for i in range(50)] == [None] * 50
        assert read_primary(server, "redis", "users:u1") is None
        assert await other.get("o1") == 1  # another namespace is untouched
    finally:
        await cache.close()
        await other.close()


@pytest.mark.memcached
async def test_memcached_namespace_invalidated_during_an_outage_is_never_a_flush(
    memcached_factory: Callable[[], MemcachedServer],
) -> None:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse, Response
    from starlette.routing import Route

    from aiocache_ext import invalidate, stream_cached

    from ..helpers import client_for

    server = memcached_factory()
    with socket.create_connection((server.host, server.port), timeout=2) as sock:
        sock.sendall(b"set foreign 0 0 3\r\nabc\r\n")  # another application's key
        assert sock.recv(64) == b"STORED\r\n"
    cache = FallbackCache(primary=primary_for(server, "memcached"), namespace="users")
    calls = [0]

    @stream_cached(cache=cache, ttl=60, key="page", key_host=False)
    async def page(request: Request) -> Response:
        calls[0] += 1
        return PlainTextResponse(f"call {calls[0]}")

    try:
        async with client_for(Starlette(routes=[Route("/", page)])) as client:
            await client.get("/")
            assert (await client.get("/")).headers["x-cache"] == "HIT"
            server.pause()
            await invalidate(namespace="users", cache=cache)  # the primary cannot hear it
            server.resume()
            await wait_for_state(cache, State.CLOSED, RECOVERY_LIMIT)
            after = await client.get("/")
        assert (after.headers["x-cache"], after.text) == ("MISS", "call 2")
        assert read_primary(server, "memcached", "foreign") == b"abc"  # never flushed
    finally:
        await cache.close()


@pytest.mark.memcached
async def test_a_key_memcached_refuses_never_blocks_recovery(
    memcached_factory: Callable[[], MemcachedServer], caplog: pytest.LogCaptureFixture
) -> None:
    server = memcached_factory()
    changes: list[tuple[State, State]] = []
    cache = FallbackCache(
        primary=primary_for(server, "memcached"),
        namespace="long",
        on_state_change=lambda old, new, error: changes.append((old, new)),
    )
    try:
        assert await cache.set("warm", 1)
        server.pause()
        await cache.get("warm")  # the outage is noticed
        assert cache.state is State.OPEN
        too_long = "k" * 300  # memcached refuses keys over 250 bytes; memory takes them
        assert await cache.set(too_long, 1)
        server.resume()
        await wait_for_state(cache, State.CLOSED, RECOVERY_LIMIT)
        assert changes == [
            (State.CLOSED, State.OPEN), (State.OPEN, State.RECOVERING),
            (State.RECOVERING, State.CLOSED),
        ]  # fmt: skip
        refused = [r for r in caplog.records if "refused by the primary" in r.getMessage()]
        assert len(refused) == 1
    finally:
        await cache.close()


@pytest.mark.parametrize(
    ("kind", "options"),
    [
        pytest.param("redis", ["--timeout", "1"], marks=pytest.mark.redis),
        pytest.param("memcached", ["-o", "idle_timeout=1"], marks=pytest.mark.memcached),
    ],
)
async def test_a_server_that_closes_idle_connections_is_not_an_outage(
    kind: str, options: list[str]
) -> None:
    server: Server = (RedisServer if kind == "redis" else MemcachedServer)(options=options)
    server.start()
    changes: list[tuple[State, State]] = []
    cache = FallbackCache(
        primary=primary_for(server, kind), namespace="idle",
        on_state_change=lambda old, new, error: changes.append((old, new)),
    )  # fmt: skip
    try:
        assert await cache.set("k", "v")
        await asyncio.sleep(2.5)  # setup, not a measure: the server closes idle connections
        assert await cache.get("k") == "v"
        assert await cache.set("k", "w")
        assert await cache.get("k") == "w"
        assert changes == []  # never taken for an outage
    finally:
        await cache.close()
        server.kill()


@pytest.mark.parametrize(
    "kind",
    [pytest.param("redis", marks=pytest.mark.redis),
     pytest.param("memcached", marks=pytest.mark.memcached)],
)  # fmt: skip
async def test_a_reply_left_unread_by_a_held_event_loop_is_not_an_outage(
    kind: str, request: pytest.FixtureRequest
) -> None:
    """A burst can hold the event loop past ``primary_timeout`` while the primary's reply
    waits in the socket: the timeout is the process's, not the primary's. The call is
    retried, answered by the primary, and no outage is reported."""
    server: Server = request.getfixturevalue(f"{kind}_factory")()
    changes: list[tuple[State, State]] = []
    cache = FallbackCache(
        primary=primary_for(server, kind), namespace="held", primary_timeout=0.2,
        on_state_change=lambda old, new, error: changes.append((old, new)),
    )  # fmt: skip
    try:
        assert await cache.set("k", "v")  # connected
        server.pause()  # the next reply is held back until the loop is busy
        pending = asyncio.ensure_future(cache.get("k"))
        await asyncio.sleep(0.05)  # the GET is on the wire, its timeout armed
        hold_event_loop(0.1)  # as a burst of connections would ...
        server.resume()  # ... while the primary answers ...
        hold_event_loop(0.5)  # ... and past the timeout: the reply waits unread
        assert await pending == "v"
        assert changes == []
        assert cache.state is State.CLOSED
    finally:
        await cache.close()


def hold_event_loop(seconds: float) -> None:
    """Keep the running event loop from running anything else for ``seconds``."""
    time.sleep(seconds)


@pytest.mark.redis
@pytest.mark.parametrize("change", ["set", "invalidate"])
async def test_recovery_ends_while_changes_keep_coming(
    redis_factory: Callable[[], RedisServer], change: str
) -> None:
    """Changes made on the fallback while the primary recovers are replayed there before
    it serves; changes arriving faster than a replay takes once kept the breaker in
    RECOVERING for as long as they came. Now the last replay holds changes back (reads go
    on), so recovery ends, and the last change made is what the primary serves."""
    from aiocache_ext import invalidate

    server = redis_factory()
    cache = FallbackCache(primary=primary_for(server, "redis"), namespace="live",
                          primary_timeout=0.5, recovery_hold=0.2)  # fmt: skip
    stop = asyncio.Event()
    written: list[int] = []

    async def keep_changing() -> None:
        while not stop.is_set():
            written.append(len(written))
            if change == "set":
                assert await cache.set("k", written[-1])
            else:
                await invalidate(namespace="live", cache=cache)
            await asyncio.sleep(0)  # as fast as the fallback takes them

    try:
        assert await cache.set("k", -1)
        server.pause()
        assert await cache.set("k", -2)  # the primary cannot hear it: the breaker opens
        assert cache.state is not State.CLOSED
        writer = asyncio.ensure_future(keep_changing())
        server.resume()
        try:
            await wait_for_state(cache, State.CLOSED, 30.0)  # never, before
        finally:
            stop.set()
            await writer
        expected = written[-1] if change == "set" else None
        assert await cache.get("k") == expected
        raw = read_primary(server, "redis", "live:k")
        assert raw == (None if expected is None else str(expected).encode())
    finally:
        await cache.close()
