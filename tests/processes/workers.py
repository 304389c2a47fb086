"""uvicorn processes (of examples/app.py, or a test app) for the multi-worker and load tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from ..servers import free_port

EXAMPLES = Path(__file__).resolve().parent.parent.parent / "examples"


class Uvicorn:
    """One uvicorn process serving ``app`` (``module:attribute`` in ``app_dir``) on a
    free loopback port, with ``env`` added to this process's environment."""

    def __init__(
        self, app: str, app_dir: Path, env: dict[str, str], ready_path: str,
        headers: dict[str, str] | None = None,
    ) -> None:  # fmt: skip
        self.port = free_port()
        self.ready_path = ready_path
        inherited = {k: v for k, v in os.environ.items() if not k.endswith("_PORT")}
        command = [sys.executable, "-m", "uvicorn", app, "--app-dir", str(app_dir),
                   "--host", "127.0.0.1", "--port", str(self.port),
                   "--log-level", "warning"]  # fmt: skip
        self.process = subprocess.Popen(command, env={**inherited, **env})
        self.client = httpx.Client(
            base_url=f"http://127.0.0.1:{self.port}", headers=headers, timeout=10
        )

    def wait_ready(self, limit: float = 20) -> None:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            assert self.process.poll() is None, "uvicorn exited at start"
            try:
                self.client.get(self.ready_path)
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


class Worker(Uvicorn):
    """One uvicorn process serving examples/app.py."""

    def __init__(self, cache_port: int, kind: str = "redis", primary_timeout: float = 0.05) -> None:
        env = {"REDIS_HOST": "127.0.0.1", f"{kind.upper()}_PORT": str(cache_port),
               "CACHE_PRIMARY_TIMEOUT": str(primary_timeout)}  # fmt: skip
        # One Host for every worker, as behind a load balancer: entries are keyed by it.
        super().__init__("app:app", EXAMPLES, env, "/health/cache", headers={"Host": "app.test"})


def wait_closed(*clients: httpx.Client, limit: float = 10) -> None:
    deadline = time.monotonic() + limit
    for client in clients:
        while client.get("/health/cache").json()["state"] != "closed":
            assert time.monotonic() < deadline, "a worker did not get back to Redis"
            time.sleep(0.05)
