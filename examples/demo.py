"""The demo: serve examples/app.py with uvicorn and show what aiocache_ext does.

MISS then HIT with timings, one entry per ``Accept-Language``, a streamed CSV replayed
with its ``ETag`` and a ``304``, ``Cache-Status`` and an invalidation, a quote served
stale while it is refreshed, a compressed DataFrame, an outage and recovery, and the
metrics. No Redis needed (memory). With ``redis-server`` installed the demo starts its
own on a free port, so it can freeze it to show an outage; else, with a Redis answering
on ``REDIS_PORT`` (or 127.0.0.1:6379) the shop routes use it (never frozen: it is not
ours). ``scripts/demo`` runs this in the project's virtualenv.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pickle
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_up(client: httpx.Client, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit("uvicorn exited before serving; see its output above")
        try:
            client.get("/docs")
            return
        except httpx.TransportError:
            time.sleep(0.05)
    sys.exit("uvicorn did not start within 20 s")


def show(client: httpx.Client, path: str, seen: dict[str, int]) -> None:
    started = time.perf_counter()
    body = client.get(path, headers={"X-Request-Id": str(time.time_ns())}).json()
    elapsed_ms = (time.perf_counter() - started) * 1000
    outcome = "HIT " if seen.get(path) == body["computed"] else "MISS"
    seen[path] = body["computed"]
    runs = body["computed"]
    print(f"  GET {path:<16} {outcome} {elapsed_ms:7.1f} ms   endpoint runs so far: {runs}")


@contextlib.contextmanager
def redis_for_demo(
    memory_only: bool,
) -> Iterator[tuple[dict[str, str], subprocess.Popen[bytes] | None]]:
    """The app's ``REDIS_*`` settings, and the redis-server process when it is the demo's
    own: a Redis answering on ``REDIS_PORT`` (default 6379) if there is one (yours: never
    frozen); else one started here when ``redis-server`` is installed (the demo's own: it
    may freeze it to show an outage); else nothing (memory). ``memory_only``: nothing."""
    port = int(os.environ.get("REDIS_PORT", "6379"))
    binary = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if os.path.exists("/usr/bin/redis-server") else None
    )
    if memory_only or (binary is None and not answers(port)):
        yield {}, None
        return
    if answers(port):
        yield {"REDIS_HOST": "127.0.0.1", "REDIS_PORT": str(port)}, None
        return
    assert binary is not None
    port = free_port()
    server = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no"], stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while not answers(port):
            if server.poll() is not None or time.monotonic() > deadline:
                sys.exit("redis-server did not start")
            time.sleep(0.05)
        yield {"REDIS_HOST": "127.0.0.1", "REDIS_PORT": str(port)}, server
    finally:
        os.kill(server.pid, signal.SIGCONT)
        server.terminate()
        server.wait(timeout=10)


def answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
    except OSError:
        return False
    return True


def marks(response: httpx.Response) -> str:
    return f"{response.headers['x-cache']:5} Cache-Status: {response.headers['cache-status']}"


def show_invalidation(client: httpx.Client) -> None:
    print("\nCache-Status (RFC 9211) and invalidate: POST /items/1 drops the shop namespace")
    for method, path in [("GET", "/items/1"), ("GET", "/items/1"), ("POST", "/items/1"),
                         ("GET", "/items/1")]:  # fmt: skip
        response = client.request(method, path)
        told = marks(response) if method == "GET" else "(the write: namespace invalidated)"
        print(f"  {method:4} {path:9} {told}")


def show_stale(client: httpx.Client) -> None:
    print("\nstale_while_revalidate: /quote is fresh for 1 s, then served stale while refreshed")
    for pause in (0.0, 1.1, 0.0, 0.5):
        time.sleep(pause)
        started = time.perf_counter()
        response = client.get("/quote")
        elapsed_ms = (time.perf_counter() - started) * 1000
        waited = f"after {pause:.1f} s " if pause else ""
        print(f"  {waited:>12}GET /quote {marks(response)}  {elapsed_ms:6.1f} ms"
              f"  quote #{response.json()['quote']}")  # fmt: skip
    print("  (STALE is served at once; its refresh ran after, so the next hit is newer)")


def show_outage(client: httpx.Client, server: subprocess.Popen[bytes] | None) -> None:
    state = client.get("/health/cache").json()["state"]
    if server is None:
        why = "the Redis is yours, not frozen" if state != "local" else "no Redis"
        print(f"\nFallbackCache outage: skipped ({why}; with redis-server installed and no")
        print("  Redis on REDIS_PORT, the demo starts one of its own and freezes it)")
        return
    print("\nFallbackCache: the demo's redis-server frozen (SIGSTOP), then thawed")
    os.kill(server.pid, signal.SIGSTOP)
    try:
        for n in (2, 2, 3):
            started = time.perf_counter()
            response = client.get(f"/items/{n}")
            elapsed_ms = (time.perf_counter() - started) * 1000
            state = client.get("/health/cache").json()["state"]
            print(f"  Redis frozen: GET /items/{n} {response.status_code} {marks(response)}"
                  f" {elapsed_ms:6.1f} ms  breaker: {state}")  # fmt: skip
    finally:
        os.kill(server.pid, signal.SIGCONT)
    started = time.monotonic()
    while client.get("/health/cache").json()["state"] != "closed":
        client.get("/items/2")  # requests let it probe Redis again
        time.sleep(0.05)
    print(f"  Redis thawed: breaker closed again after {time.monotonic() - started:.1f} s;"
          f" GET /items/2 {marks(client.get('/items/2'))}")  # fmt: skip
    print("  (no request failed; what was cached in memory meanwhile is dropped: Redis never")
    print("   saw the changes made during the outage, so its entries are the ones to trust)")


def show_metrics(client: httpx.Client) -> None:
    print("\nPrometheus metrics on /metrics (aiocache_ext.contrib.prometheus):")
    for line in client.get("/metrics/").text.splitlines():
        if line.startswith(("aiocache_ext_requests_total", "aiocache_ext_breaker_state")):
            print(f"  {line}")


def show_stream(client: httpx.Client) -> None:
    print("\nstream_cached + vary_on_headers: a streamed CSV, one entry per Accept-Language")
    etag = ""
    for language in ("en", "fr", "en", "fr"):
        started = time.perf_counter()
        response = client.get("/report.csv", headers={"Accept-Language": language})
        elapsed_ms = (time.perf_counter() - started) * 1000
        etag = response.headers.get("etag", "") if language == "en" else etag
        first_line, tag = response.text.splitlines()[0], response.headers.get("etag", "-")
        outcome = response.headers["x-cache"]
        print(f"  GET /report.csv [{language}] {outcome:4} {elapsed_ms:6.1f} ms"
              f"  first line: {first_line!r}  etag: {tag}")  # fmt: skip
    print("  (etag: - on a streamed miss: its ETag is the body's digest, known once the body")
    print("   is; every hit carries it)")
    again = client.get("/report.csv", headers={"Accept-Language": "en", "If-None-Match": etag})
    print(f"  GET /report.csv [en] If-None-Match: {again.status_code}, {len(again.content)} bytes")


def show_compression() -> None:
    import pandas as pd

    from aiocache_ext import CompressionSerializer

    frame = pd.DataFrame({"day": range(100_000), "store": [f"s{i % 40}" for i in range(100_000)]})
    serializer = CompressionSerializer()
    pickled, stored = len(pickle.dumps(frame)), len(serializer.dumps(frame))
    print("\nCompressionSerializer: a pandas DataFrame of 100 000 rows")
    print(f"  pickled {pickled / 1e6:.2f} MB -> stored {stored / 1e6:.2f} MB "
          f"({pickled / stored:.1f}x smaller), read back equal: "
          f"{serializer.loads(serializer.dumps(frame)).equals(frame)}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--memory", action="store_true", help="no Redis at all: memory only")
    with redis_for_demo(parser.parse_args().memory) as (redis_settings, redis_server):
        serve(redis_settings, redis_server)


def serve(redis_settings: dict[str, str], redis_server: subprocess.Popen[bytes] | None) -> None:
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "app:app", "--app-dir", str(HERE),
               "--port", str(port), "--log-level", "error"]  # fmt: skip
    inherited = {k: v for k, v in os.environ.items() if k not in ("REDIS_HOST", "REDIS_PORT")}
    env = {**inherited, **redis_settings}
    server = subprocess.Popen(command, env=env)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            wait_until_up(client, server)
            health = client.get("/health/cache").json()
            if "REDIS_PORT" in env:
                owner = "the demo's own" if redis_server is not None else "yours"
                where = f"FallbackCache on Redis ({owner}, port {env['REDIS_PORT']})"
            else:
                where = "in-process memory (no Redis: state 'local', nothing to break)"
            print(f"example app served by uvicorn on 127.0.0.1:{port}; shop cache: {where}, "
                  f"state: {health['state']}\n")  # fmt: skip
            seen: dict[str, int] = {}
            print("aiocache_ext.key_builder: the request is left out of the key")
            for _ in range(3):
                show(client, "/hello/ada", seen)
            show(client, "/hello/grace", seen)
            print("\naiocache's default key: the request object is in it, so nothing hits")
            for _ in range(2):
                show(client, "/plain/ada", seen)
            report = client.get("/report").json()
            print("\nKeyBuilder on a plain function (db session ignored, dict/set order free):")
            print(f"  two calls, endpoint runs: {report['computed']}, key: {report['key']}")
            show_stream(client)
            show_invalidation(client)
            show_stale(client)
            show_compression()
            show_outage(client, redis_server)
            show_metrics(client)
            print(f"\ncache state at the end: {client.get('/health/cache').json()['state']}")
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
