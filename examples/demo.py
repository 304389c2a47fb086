"""The demo: serve examples/app.py with uvicorn, call it, and show MISS then HIT.

No Redis needed: the app caches in memory. ``scripts/demo`` runs this in the project's
virtualenv.
"""

from __future__ import annotations

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


def main() -> None:
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "app:app", "--app-dir", str(HERE),
               "--port", str(port), "--log-level", "warning"]  # fmt: skip
    server = subprocess.Popen(command)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            wait_until_up(client, server)
            print(f"example app served by uvicorn on 127.0.0.1:{port} (cache: memory)\n")
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
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
