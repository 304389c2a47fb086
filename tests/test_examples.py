"""The examples run as they are: the demo serves the app with uvicorn and shows MISS then HIT."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from .servers import RedisServer, free_port

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.mark.parametrize("backend", ["memory", "yours", "own"])
def test_demo_shows_every_feature(backend: str, request: pytest.FixtureRequest) -> None:
    """``memory``: no Redis at all; ``yours``: a Redis answering on ``REDIS_PORT`` (never
    frozen); ``own``: nothing there, so the demo starts its own and shows an outage."""
    port = request.getfixturevalue("redis_server").port if backend == "yours" else free_port()
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "demo.py"), *(["--memory"] if backend == "memory" else [])],
        env={**os.environ, "REDIS_PORT": str(port)},
        capture_output=True,
        text=True,
        timeout=90,
        check=True,
    )
    output = result.stdout
    outcomes = re.findall(r"GET (/hello/\S+|/plain/\S+)\s+(HIT|MISS)", output)
    assert outcomes == [
        ("/hello/ada", "MISS"),
        ("/hello/ada", "HIT"),
        ("/hello/ada", "HIT"),
        ("/hello/grace", "MISS"),
        ("/plain/ada", "MISS"),
        ("/plain/ada", "MISS"),
    ], output
    assert "two calls, endpoint runs: 1" in output
    streamed = re.findall(r"GET /report.csv \[(en|fr)\] (MISS|HIT) .*first line: '([^']+)'", output)
    assert streamed == [
        ("en", "MISS", "month,sales"),
        ("fr", "MISS", "mois,ventes"),
        ("en", "HIT", "month,sales"),
        ("fr", "HIT", "mois,ventes"),
    ], output
    assert "If-None-Match: 304, 0 bytes" in output
    items = re.findall(r"(GET|POST) +/items/1 +(MISS|HIT|\(the write)", output)
    assert items == [("GET", "MISS"), ("GET", "HIT"), ("POST", "(the write"), ("GET", "MISS")]
    assert "shop; fwd=miss; ttl=600; stored" in output and "shop; hit; ttl=" in output
    quotes = re.findall(r"GET /quote (MISS|STALE|HIT) ", output)
    assert quotes[:2] == ["MISS", "STALE"] and "HIT" in quotes, output
    assert re.search(r"pickled [\d.]+ MB -> stored [\d.]+ MB .* read back equal: True", output)
    assert 'aiocache_ext_requests_total{outcome="stale",route="/quote"}' in output
    expected = {
        "memory": "in-process memory (no Redis",
        "yours": f"FallbackCache on Redis (yours, port {port})",
        "own": "FallbackCache on Redis (the demo's own, port",
    }[backend]
    assert expected in output
    if backend == "own":
        frozen = re.findall(
            r"Redis frozen: GET /items/\d (\d+) (MISS|HIT) .* breaker: (\w+)", output
        )
        assert [status for status, _, _ in frozen] == ["200"] * 3, output
        assert ("200", "HIT", "open") in frozen
        assert "Redis thawed: breaker closed again" in output
    else:
        assert "FallbackCache outage: skipped" in output
    assert f"cache state at the end: {'local' if backend == 'memory' else 'closed'}" in output


def run_example(name: str, redis_port: int) -> str:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        env={**os.environ, "REDIS_HOST": "127.0.0.1", "REDIS_PORT": str(redis_port)},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return result.stdout


@pytest.mark.redis
def test_dataframe_example_on_redis(redis_server: RedisServer) -> None:
    output = run_example("dataframe.py", redis_server.port)
    assert "round trip OK" in output
    assert f"caching in Redis on 127.0.0.1:{redis_server.port}" in output
    client = redis.Redis(port=redis_server.port)
    try:
        assert client.exists("dev:key") == 1
    finally:
        client.close()


def test_dataframe_example_without_redis() -> None:
    output = run_example("dataframe.py", free_port())
    assert "caching in memory" in output
    assert "round trip OK" in output


@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_streaming_example(backend: str, request: pytest.FixtureRequest) -> None:
    port = request.getfixturevalue("redis_server").port if backend == "redis" else free_port()
    output = run_example("streaming.py", port)
    assert ("RedisCache" if backend == "redis" else "SimpleMemoryCache") in output
    assert re.search(r"first GET: MISS 13 lines, etag=-", output), output
    assert re.search(r'second GET: HIT  13 lines, etag="[0-9a-f]{32}"', output), output
    assert "If-None-Match: 304, 0 body bytes" in output
