"""The examples run as they are: the demo serves the app with uvicorn and shows MISS then HIT."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_demo_shows_miss_then_hit() -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "demo.py")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    outcomes = re.findall(r"GET (\S+)\s+(HIT|MISS)", result.stdout)
    assert outcomes == [
        ("/hello/ada", "MISS"),
        ("/hello/ada", "HIT"),
        ("/hello/ada", "HIT"),
        ("/hello/grace", "MISS"),
        ("/plain/ada", "MISS"),
        ("/plain/ada", "MISS"),
    ], result.stdout
    assert "two calls, endpoint runs: 1" in result.stdout
