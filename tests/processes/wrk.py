"""Runs wrk (a real HTTP load generator) and reads its report."""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess

_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


@dataclasses.dataclass(frozen=True)
class WrkResult:
    requests: int
    requests_per_second: float
    p50: float
    p99: float
    errors: int  # socket errors (connect, read, write, timeout) + non-2xx/3xx responses
    output: str


def wrk_binary() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise RuntimeError("wrk not found: run scripts/test (installs it) or apt-get install wrk")
    return path


def start(url: str, seconds: float, connections: int = 8) -> subprocess.Popen[str]:
    """Start a bounded run against a loopback ``url``; ``finish`` reads its report."""
    assert url.startswith("http://127.0.0.1:"), "load only ever goes to loopback"
    command = [wrk_binary(), "-t1", f"-c{connections}", f"-d{seconds}s", "--latency",
               "--timeout", "5s", url]  # fmt: skip
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(process: subprocess.Popen[str], limit: float = 120) -> WrkResult:
    output, _ = process.communicate(timeout=limit)
    return parse(output)


def parse(output: str) -> WrkResult:
    def latency(percent: str) -> float:
        found = re.search(rf"^\s+{percent}%\s+([\d.]+)(us|ms|s|m)\s*$", output, re.M)
        assert found, output
        return float(found.group(1)) * _UNITS[found.group(2)]

    requests = re.search(r"(\d+) requests in", output)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    assert requests and rate, output
    socket = re.search(r"connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = sum(map(int, socket.groups())) if socket else 0
    errors += int(non_2xx.group(1)) if non_2xx else 0
    return WrkResult(int(requests.group(1)), float(rate.group(1)), latency("50"),
                     latency("99"), errors, output)  # fmt: skip
