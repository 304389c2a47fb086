"""The harness itself: real servers start, fail and come back as fault tests expect."""

from __future__ import annotations

import socket
from collections.abc import Callable

import pytest
import redis

from .servers import MemcachedServer, RedisServer, Server


def _roundtrip(server: Server) -> bool:
    return server.answers(timeout=0.3)


@pytest.mark.parametrize("kind", ["redis", "memcached"])
def test_pause_resume_kill_restart_on_the_same_port(
    kind: str,
    redis_factory: Callable[[], RedisServer],
    memcached_factory: Callable[[], MemcachedServer],
) -> None:
    server: Server = redis_factory() if kind == "redis" else memcached_factory()
    port, first_pid = server.port, server.pid
    assert _roundtrip(server)

    server.pause()
    with socket.create_connection((server.host, port), timeout=1):
        pass  # the kernel still accepts: a black hole, not a refusal
    assert not _roundtrip(server)
    server.resume()
    assert _roundtrip(server)

    server.kill()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((server.host, port), timeout=1).close()

    server.restart()
    assert server.port == port and server.pid != first_pid
    assert _roundtrip(server)

    server.stop()
    assert server.process is not None and server.process.returncode is not None


def test_redis_runs_without_persistence(redis_server: RedisServer) -> None:
    client = redis.Redis(host=redis_server.host, port=redis_server.port)
    try:
        assert client.config_get("save") == {"save": ""}
        assert client.config_get("appendonly") == {"appendonly": "no"}
    finally:
        client.close()
