"""The demo: serve examples/app.py with uvicorn and show what aiocache_ext does.

MISS then HIT with timings, one entry per ``Accept-Language``, a streamed CSV replayed
with its ``ETag`` and a ``304``, a compressed DataFrame, and the cache's state. No Redis
needed (memory); with a Redis on ``REDIS_PORT`` (or 127.0.0.1:6379) the shop routes use
it through ``FallbackCache``. ``scripts/demo`` runs this in the project's virtualenv.
"""

from __future__ import annotations

import os
import pickle
import socket
import subprocess
import sys
import time
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


def redis_env() -> dict[str, str]:
    """``REDIS_PORT`` for the app when a Redis answers there, else nothing (memory)."""
    port = int(os.environ.get("REDIS_PORT", "6379"))
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
    except OSError:
        return {}
    return {"REDIS_HOST": "127.0.0.1", "REDIS_PORT": str(port)}


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
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "app:app", "--app-dir", str(HERE),
               "--port", str(port), "--log-level", "warning"]  # fmt: skip
    inherited = {k: v for k, v in os.environ.items() if k not in ("REDIS_HOST", "REDIS_PORT")}
    env = {**inherited, **redis_env()}
    server = subprocess.Popen(command, env=env)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            wait_until_up(client, server)
            health = client.get("/health/cache").json()
            where = f"Redis on port {env['REDIS_PORT']}" if "REDIS_PORT" in env else "memory"
            print(f"example app served by uvicorn on 127.0.0.1:{port}; shop cache: "
                  f"{health['cache']} ({where}), state: {health['state']}\n")  # fmt: skip
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
            show_compression()
            print(f"\ncache state at the end: {client.get('/health/cache').json()['state']}")
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
