"""The public names: importable from ``aiocache_ext``, listed once, sorted."""

from __future__ import annotations

import types

import aiocache_ext


def _isort_style(name: str) -> tuple[int, str]:
    """Constants, then classes, then functions, each alphabetically (ruff's RUF022)."""
    return (0 if name.isupper() else 1 if name[0].isupper() else 2, name)


#: Public names imported on first use (they need the ``redis`` extra).
LAZY = {"RedisCache", "sentinel_master"}


def test_all_is_sorted_and_complete() -> None:
    assert aiocache_ext.__all__ == sorted(aiocache_ext.__all__, key=_isort_style)
    public = {
        name
        for name, value in vars(aiocache_ext).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public | LAZY == set(aiocache_ext.__all__)
    assert all(getattr(aiocache_ext, name) is not None for name in LAZY)


def test_spec_names_are_exported() -> None:
    for name in ("KeyBuilder", "key_builder"):
        assert getattr(aiocache_ext, name) is not None
