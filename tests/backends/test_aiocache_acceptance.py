"""aiocache's own acceptance tests, run against ``FallbackCache``.

The tests come from the sdist of the installed aiocache (downloaded with pip, never
copied into this repository): its ``tests/acceptance`` with its fixtures replaced by
``aiocache_acceptance_fixtures.py``, so that every ``redis_cache``, ``memcached_cache`` and
``cache`` is a ``FallbackCache`` over a real server, running or with nothing listening.
They run in a pytest of their own (aiocache's layout and markers), and every outcome is
compared with the list below: a test that starts failing, or stops, fails here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

import pytest

from ..servers import MemcachedServer, RedisServer, Server, free_port

#: What differs from a plain RedisCache / MemcachedCache, on purpose or by nature.
FLOAT_TTL = "expects memcached to refuse a float ttl: FallbackCache rounds it up to whole seconds"
DIFFERENCES = {
    "TestMemcachedCache::test_set_float_ttl_fails": FLOAT_TTL,
    "TestMemcachedCache::test_multi_set_float_ttl": FLOAT_TTL,
    "TestMemcachedRedLock::test_float_lease": FLOAT_TTL,
    "TestMemcachedCache::test_clear_with_namespace_memcached": (
        "expects clear(namespace) to raise on memcached: FallbackCache drops the namespace"
    ),
    "TestMemcachedCache::test_close": "reads a private attribute (client._pool._pool)",
}
#: With the primary down, the memory fallback answers.
WHILE_DOWN = {
    "TestRedisCache::test_raw": "raw() sends a Redis command: the memory fallback has others",
    "TestMemcachedCache::test_raw": "raw() sends a memcached command: likewise",
    "TestMemcachedCache::test_set_too_long_key": (
        "expects memcached to refuse a 2000-byte key: the memory fallback takes it"
    ),
}
INI = """[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = function
markers =
    redis: aiocache's Redis tests
    memcached: aiocache's memcached tests
"""


@pytest.fixture(scope="module")
def acceptance(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory laid out as aiocache's repository: ``tests/acceptance`` and
    ``tests/utils.py`` from its sdist (test ids and cache keys name ``tests.``)."""
    work = tmp_path_factory.mktemp("aiocache-acceptance")
    release = version("aiocache")
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
         "--disable-pip-version-check", "-d", str(work), f"aiocache=={release}"],
        check=True, timeout=120,
    )  # fmt: skip
    with tarfile.open(work / f"aiocache-{release}.tar.gz") as sdist:
        members = [m for m in sdist.getmembers() if m.name.split("/")[1:2] == ["tests"]]
        if hasattr(tarfile, "data_filter"):  # Python 3.12+, and 3.9.17+ / 3.10.12+ / 3.11.4+
            sdist.extractall(work, members, filter="data")
        else:  # pragma: no cover - older patch releases
            sdist.extractall(work, members)
    root = work / "root"
    shutil.copytree(work / f"aiocache-{release}" / "tests", root / "tests")
    suite = root / "tests" / "acceptance"
    shutil.copy(Path(__file__).with_name("aiocache_acceptance_fixtures.py"), suite / "conftest.py")
    # Serializers are not what FallbackCache changes, and need marshmallow.
    (suite / "test_serializers.py").unlink()
    (root / "pytest.ini").write_text(INI)
    return root


#: aiocache tests that sleep to the edge of a ttl or a lease, or count lock polls: on a
#: loaded machine they can fail on any backend. One that fails is run again, alone, up to
#: ``RETRIES`` times (a real regression fails every time).
TIMING = {
    "test_set_with_ttl", "test_multi_set_with_ttl", "test_expire_existing",
    "test_expire_with_0", "test_set_cancel_previous_ttl_handle", "test_float_ttl",
    "test_multi_set_float_ttl", "test_cached_ttl", "test_cached_stampede",
    "test_locking_dogpile", "test_locking_dogpile_lease_expiration",
    "test_check_and_set_with_int_ttl", "test_check_and_set_with_float_ttl", "test_float_lease",
}  # fmt: skip


RETRIES = 3


def start(
    root: Path, kind: str, port: int, tests: list[str] | None = None
) -> tuple[subprocess.Popen[bytes], Path]:
    """Start aiocache's tests marked ``kind`` (or the node ids ``tests``) against the
    primary on ``port``."""
    report = root / f"{kind}-{port}-{len(tests or ())}.xml"
    env = {**os.environ, "AIOCACHE_ACCEPTANCE_PRIMARY": kind,
           "AIOCACHE_ACCEPTANCE_PORT": str(port)}  # fmt: skip
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", kind,
               f"--junitxml={report}", *(tests or ["tests/acceptance"])]  # fmt: skip
    process = subprocess.Popen(command, cwd=root, env=env, stdout=subprocess.DEVNULL)
    return process, report


def failures(report: Path) -> tuple[int, dict[str, str]]:
    """How many tests ran, and the failed ones (by node id) with their message."""
    cases = list(ElementTree.parse(report).iter("testcase"))
    failed = {}
    for case in cases:
        problem = case.find("failure")
        problem = case.find("error") if problem is None else problem
        if problem is not None:
            *module, cls = case.get("classname", "").split(".")
            failed[f"{'/'.join(module)}.py::{cls}::{case.get('name')}"] = problem.get("message", "")
    return len(cases), failed


def expected(kind: str, primary_up: bool) -> set[str]:
    known = {**DIFFERENCES, **({} if primary_up else WHILE_DOWN)}
    return {name for name in known if kind in name.lower()}


def listed(node: str, names: set[str]) -> bool:
    return node.split(".py::", 1)[1] in names


def timing(node: str) -> bool:
    return node.rsplit("::", 1)[1].split("[")[0] in TIMING


@pytest.mark.redis
@pytest.mark.memcached
def test_aiocache_acceptance_suite_on_fallback_cache(
    acceptance: Path,
    redis_factory: Callable[[], RedisServer],
    memcached_factory: Callable[[], MemcachedServer],
) -> None:
    """Over Redis and over memcached, each up and down: four runs at once (they mostly
    wait on ttls and leases), each on a server of its own (the suite flushes it)."""
    servers: dict[tuple[str, bool], Server] = {
        ("redis", True): redis_factory(), ("memcached", True): memcached_factory()
    }  # fmt: skip
    ports = {**{case: server.port for case, server in servers.items()},
             ("redis", False): free_port(), ("memcached", False): free_port()}  # fmt: skip
    runs = {case: start(acceptance, case[0], port) for case, port in ports.items()}
    for process, _ in runs.values():
        process.wait(timeout=300)
    results = {case: failures(report) for case, (_, report) in runs.items()}
    assert all(ran > 50 for ran, _ in results.values()), results  # the suites ran
    unexpected = {
        case: {node: message for node, message in failed.items()
               if not listed(node, expected(*case))}
        for case, (_, failed) in results.items()
    }  # fmt: skip
    for case in unexpected:
        for _ in range(RETRIES):
            again = [node for node in unexpected[case] if timing(node)]
            if not again:
                break
            if case in servers:  # what the failed run left (aiocache's fixtures delete
                servers[case].flush()  # only their own keys) must not fail the next
            process, report = start(acceptance, case[0], ports[case], again)
            process.wait(timeout=300)
            still = failures(report)[1]
            unexpected[case] = {
                n: m for n, m in unexpected[case].items() if n not in again or n in still
            }
    assert not any(unexpected.values()), unexpected
    missing = {
        case: {name for name in expected(*case) if not any(listed(n, {name}) for n in failed)}
        for case, (_, failed) in results.items()
    }
    assert not any(missing.values()), missing  # a listed difference went away: update the list
