"""Adds a per-request part (the varied header values) to the keys one decorated call uses.

aiocache's ``cached`` builds its key with any key builder, then passes it to
``cache.get``/``cache.set``, which call ``cache.build_key``. A decorator standing above
``cached`` cannot change the key builder, so it wraps ``build_key`` of that cache once, and
sets a context variable for the duration of one call: only the call's own key (the first
key the call builds, plus keys derived from it such as stream segments) gets the part.
Other cache calls made by the endpoint are untouched. Context variables are per task, so
concurrent requests never see each other's part.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from aiocache.base import BaseCache

from ..keys import MEMCACHED_MAX_KEY_BYTES, shorten

#: Separator after which a stream's derived keys (segments) follow the base key.
DERIVED_KEY_SEPARATOR = ":"


@dataclasses.dataclass
class _Scope:
    cache: BaseCache
    suffix: str
    base_key: str | None = None


_scope: ContextVar[_Scope | None] = ContextVar("aiocache_ext_key_scope", default=None)


def install(cache: BaseCache) -> None:
    """Wrap ``cache.build_key`` (once per cache) so it honours the current scope."""
    if getattr(cache, "_aiocache_ext_scoped", False):
        return
    original = cache.build_key

    def build_key(key: Any, namespace: str | None = None) -> Any:
        scope = _scope.get()
        if scope is None or scope.cache is not cache or not isinstance(key, str):
            return original(key, namespace=namespace)
        if scope.base_key is None:
            scope.base_key = key
        base = scope.base_key
        if key != base and not key.startswith(base + DERIVED_KEY_SEPARATOR):
            return original(key, namespace=namespace)
        built = original(key + scope.suffix, namespace=namespace)
        overflow = len(built) - MEMCACHED_MAX_KEY_BYTES
        if overflow > 0:  # keep every backend's keys valid, whatever the base key was
            fitted = shorten(key + scope.suffix, len(key) + len(scope.suffix) - overflow)
            built = original(fitted, namespace=namespace)
        return built

    cache.build_key = build_key
    cache._aiocache_ext_scoped = True


@contextmanager
def key_scope(cache: BaseCache, suffix: str) -> Iterator[None]:
    """Within the block, the call's keys on ``cache`` end in ``suffix`` (nested: both)."""
    outer = _scope.get()
    if outer is not None and outer.cache is cache:
        suffix = outer.suffix + suffix
    token = _scope.set(_Scope(cache, suffix))
    try:
        yield
    finally:
        _scope.reset(token)
