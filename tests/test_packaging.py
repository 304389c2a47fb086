"""The distribution as a user gets it: the sdist and the wheel build from a clean tree,
pass ``twine check``, carry their metadata from ``pyproject.toml`` and the licence, and
the wheel installed into a clean virtualenv (no extras) imports and works outside the
repository."""

from __future__ import annotations

import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

import aiocache_ext

pytestmark = pytest.mark.packaging

ROOT = Path(__file__).resolve().parent.parent

#: Run by the installed wheel, from a directory where the repository is not importable.
USE = """
import asyncio, importlib.metadata as metadata, pathlib
import aiocache_ext
from aiocache import Cache
from aiocache_ext import stream_cached

assert "site-packages" in aiocache_ext.__file__, aiocache_ext.__file__
assert (pathlib.Path(aiocache_ext.__file__).parent / "py.typed").exists()
meta = metadata.metadata("aiocache-ext")
print(metadata.version("aiocache-ext"), meta["License-Expression"], meta["Requires-Python"])

@stream_cached(cache=Cache(Cache.MEMORY), ttl=60)
async def double(n: int) -> int:
    return n * 2

assert asyncio.run(double(21)) == 42
"""


def run(*command: str | Path, cwd: Path = ROOT) -> str:
    done = subprocess.run(
        [str(part) for part in command], cwd=cwd, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"{command}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sdist and the wheel, built from this tree (no network: the venv's setuptools)."""
    out = tmp_path_factory.mktemp("dist")
    run(sys.executable, "-m", "build", "--no-isolation", "--outdir", out, ROOT)
    return out


def test_both_distributions_pass_twine_check(dist: Path) -> None:
    files = sorted(dist.iterdir())
    assert sorted(f.suffix for f in files) == [".gz", ".whl"]
    run(sys.executable, "-m", "twine", "check", "--strict", *files)


def test_the_sdist_ships_the_package_and_its_papers_and_no_half_test_suite(dist: Path) -> None:
    (sdist,) = dist.glob("*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert {"LICENSE", "README.md", "CHANGELOG.md", "pyproject.toml"} <= names
    assert "aiocache_ext/py.typed" in names
    assert not [n for n in names if n.startswith(("tests", "benchmarks", "examples", "scripts"))]


def test_the_wheel_installs_into_a_clean_venv_and_works(dist: Path, tmp_path: Path) -> None:
    (wheel,) = dist.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        assert any(name.endswith("licenses/LICENSE") for name in archive.namelist())
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv)
    python = venv / "bin" / "python"
    run(python, "-m", "pip", "install", "-q", "--disable-pip-version-check", wheel)
    printed = run(python, "-c", USE, cwd=tmp_path).split()
    assert printed == [aiocache_ext.__version__, "BSD-3-Clause", ">=3.9"]
