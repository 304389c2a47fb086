"""Every benchmark, one command: each one's tables, then the targets beside the measures.

python benchmarks/run.py        # about 10 minutes on 2 cores
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from _common import machine, table

HERE = Path(__file__).resolve().parent
SCRIPTS = [
    "compression.py", "streaming.py", "cluster.py", "single_flight.py", "near.py",
    "outage.py", "invalidation.py", "load.py", "metrics.py",
]  # fmt: skip


def run(script: str) -> str:
    result = subprocess.run(
        [sys.executable, str(HERE / script)], capture_output=True, text=True, timeout=1800
    )
    if result.returncode != 0:
        raise SystemExit(f"{script} failed:\n{result.stdout}\n{result.stderr}")
    lines = [line for line in result.stdout.splitlines() if not line.startswith("machine:")]
    return "\n".join(lines).strip()


def cell(output: str, pattern: str) -> str:
    found = re.search(pattern, output, re.M)
    return found.group(1) if found else "?"


def main() -> None:
    print(f"machine: {machine()}\n")
    outputs = {}
    for script in SCRIPTS:
        outputs[script] = run(script)
        print(f"## {script}\n\n{outputs[script]}\n", flush=True)
    streaming, outage, load = outputs["streaming.py"], outputs["outage.py"], outputs["load.py"]
    cluster, flights, near = outputs["cluster.py"], outputs["single_flight.py"], outputs["near.py"]
    metered = outputs["metrics.py"]
    rows = [
        ["stream replay of 64 MiB from Redis vs raw MGET (1 KiB chunks)", "≥ 0.6x",
         cell(streaming, r"^\| 1 KiB \|[^|]+\|[^|]+\| ([\d.]+) \|") + "x"],
        ["same, 64 KiB chunks", "≥ 0.6x",
         cell(streaming, r"^\| 64 KiB \|[^|]+\|[^|]+\| ([\d.]+) \|") + "x"],
        ["replay with segment checks (CRC-32) vs replay before them", "≥ 0.9x",
         cell(streaming, r"^\| now: CRC-32 \(zlib-ng\) \|[^|]+\| ([\d.]+) \|") + "x"],
        ["hit through GZipMiddleware, compress=True vs uncached through it", "",
         cell(streaming, r"^\| hit through GZipMiddleware, compress=True \|[^|]+\| ([\d.]+) \|")
         + "x"],
        ["small Response hit (memory) vs uncached FastAPI route", "≥ 1.0x",
         cell(streaming, r"^\| /stream-cached \|[^|]+\| ([\d.]+) \|") + "x"],
        ["plain aiocache.cached, same route (for scale)", "",
         cell(streaming, r"^\| /aiocache \|[^|]+\| ([\d.]+) \|") + "x"],
        ["small hit on a Redis Cluster vs one node", "",
         cell(cluster, r"^\| cluster, 3\+3 \|[^|]+\| ([\d.]+) \|") + "x"],
        ["64 MiB replay on a Redis Cluster vs one node", "",
         cell(cluster, r"^\| cluster, 3\+3 \|(?:[^|]+\|){4} ([\d.]+) \|") + "x"],
        ["endpoint calls, 100 cold requests over 4 workers", "1",
         cell(flights, r"^\| shared \| (\d+) ")],
        ["same, waiters' last byte vs the leader's", "",
         cell(flights, r"^\| shared \|(?:[^|]+\|){5} ([\d.]+) \|") + "x"],
        ["p99 on a stale entry during its refresh vs fresh hits", "",
         cell(flights, r"^\| [\d.]+ ±\d+% \| [\d.]+ ±\d+% \| ([\d.]+) \|") + "x"],
        ["small JSONResponse hit (memory), each route in its own app", "≥ 1.0x",
         cell(near, r"^\| /memory \|[^|]+\| ([\d.]+) \|") + "x"],
        ["dict-returning route hit (memory) vs uncached FastAPI route", "≥ 0.8x",
         cell(near, r"^\| /memory-dict \|[^|]+\| ([\d.]+) \|") + "x"],
        ["small hit through NearCache over Redis vs uncached FastAPI route", "≥ 0.8x",
         cell(near, r"^\| /near \|[^|]+\| ([\d.]+) \|") + "x"],
        ["same, on Redis without NearCache (for scale)", "",
         cell(near, r"^\| /redis \|[^|]+\| ([\d.]+) \|") + "x"],
        ["a near hit, NearCache.get", "< 20 µs",
         cell(near, r"^\| NearCache.get[^|]+\| ([\d.]+) ") + " µs"],
        ["staleness across processes, p99 (max)", "",
         cell(near, r"^\| normal \|[^|]+\| ([\d,]+) \|") + " µs ("
         + cell(near, r"^\| normal \|[^|]+\|[^|]+\| ([\d,]+) \|") + " µs)"],
        ["p99 during a Redis freeze, breaker open", "< 10 ms",
         cell(outage, r"^\| FallbackCache \| during, breaker open \|[^|]+\|[^|]+\| ([\d.]+) \|")
         + " ms"],
        ["breaker open after the freeze", "< 1 s",
         cell(outage, r"first request waited (\d+) ms") + " ms"],
        ["back on Redis after it returns", "< 2 s",
         cell(outage, r"back on Redis ([\d.]+) s") + " s"],
        ["load test errors with Redis frozen (2 workers, wrk)", "0",
         cell(load, r"^\| small, Redis frozen \(SIGSTOP\) \|[^|]+\|[^|]+\|[^|]+\| (\d+) \|")],
        ["memory hit with Prometheus metrics vs without (in-process)", "≥ 0.97x",
         cell(metered, r"^\| prometheus \|[^|]+\| ([\d.]+) \|") + "x"],
        ["endpoint calls for 1,000 connections on a cold key (wrk)", "1",
         cell(load, r"^\| /slow/cold \|(?:[^|]+\|){5} (\d+) \|")],
    ]  # fmt: skip
    print("## Targets\n")
    print(table(["measure", "target", "measured"], rows))


if __name__ == "__main__":
    main()
