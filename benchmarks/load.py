"""wrk against two uvicorn workers of examples/app.py sharing one redis-server.

    python benchmarks/load.py

Cached-hit requests/s and p99 for a small route and a 1 MiB streamed route, with the
same routes uncached beside them; then the small route while Redis is frozen (SIGSTOP):
errors (must be 0) and p99. Last, a burst: wrk with 1,000 connections (ten times
redis-py's default pool) on a cold key of a slow route (0.3 s), one worker: errors and
endpoint calls (must be 0 and 1). Loopback only, bounded in time.
"""

from __future__ import annotations

from _common import machine, redis_server, table

from tests.processes import wrk
from tests.processes.workers import Worker, wait_closed

SECONDS = 4


def run(workers: list[Worker], path: str) -> list[wrk.WrkResult]:
    runs = [wrk.start(f"http://127.0.0.1:{w.port}{path}", SECONDS) for w in workers]
    return [wrk.finish(r) for r in runs]


def row(label: str, results: list[wrk.WrkResult]) -> list[str]:
    rate = sum(r.requests_per_second for r in results)
    p50, p99 = max(r.p50 for r in results), max(r.p99 for r in results)
    errors = sum(r.errors for r in results)
    return [label, f"{rate:,.0f}", f"{p50 * 1e3:.2f}", f"{p99 * 1e3:.2f}", str(errors)]


def main() -> None:
    print(f"machine: {machine()}\n")
    rows = []
    with redis_server() as server:
        workers = [Worker(server.port), Worker(server.port)]
        try:
            for worker in workers:
                worker.wait_ready()
                for path in ("/items/1", "/blob"):
                    worker.client.get(path)
            for label, path in (("small, stream_cached hit", "/items/1"),
                                ("small, uncached", "/uncached/items/1"),
                                ("1 MiB stream, stream_cached hit", "/blob"),
                                ("1 MiB stream, uncached", "/uncached/blob")):  # fmt: skip
                rows.append(row(label, run(workers, path)))
            server.pause()
            try:
                rows.append(row("small, Redis frozen (SIGSTOP)", run(workers, "/items/1")))
            finally:
                server.resume()
            wait_closed(*(w.client for w in workers))
        finally:
            for worker in workers:
                worker.stop()
    header = ["route (2 workers, wrk -c8 each)", "requests/s", "p50 ms", "p99 ms", "errors"]
    print(table(header, rows))
    print("\n" + burst())


def burst() -> str:
    with redis_server() as server:
        worker = Worker(server.port, primary_timeout=0.25)
        try:
            worker.wait_ready()
            url = f"http://127.0.0.1:{worker.port}/slow/cold"
            result = wrk.finish(wrk.start(url, SECONDS, connections=1000))
            calls = worker.client.get("/health/cache").json()["computed"]["slow"]
        finally:
            worker.stop()
    header = ["burst (1 worker, wrk -c1000, cold key, 0.3 s route)", "requests",
              "requests/s", "p50 ms", "p99 ms", "errors", "endpoint calls"]  # fmt: skip
    cells = [f"{result.requests:,}", f"{result.requests_per_second:,.0f}",
             f"{result.p50 * 1e3:.1f}", f"{result.p99 * 1e3:.1f}", str(result.errors),
             str(calls)]  # fmt: skip
    return table(header, [["/slow/cold", *cells]])


if __name__ == "__main__":
    main()
