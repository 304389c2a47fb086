"""Adds a per-request part (the varied header values) to the key of one decorated call.

aiocache's ``cached`` builds its key with any key builder, then passes it to
``cache.get``/``cache.set``, which call ``cache.build_key``. A decorator standing above
``cached`` cannot change the key builder, so it wraps ``build_key`` of that cache once, and
sets a context variable for the duration of one call: only the call's own key (the first
key built in the call) gets the part; other cache calls made by the endpoint are
untouched. Context variables are per task, so concurrent requests never see each other's
part. Code that keeps using a key after the call returns (a streamed response) takes the
finished key once with ``scoped_key``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from aiocache.base import BaseCache

from ..backends.adapter import backend_of
from ..keys import shorten


@dataclasses.dataclass
class _Scope:
    cache: BaseCache
    suffix: str
    names: tuple[str, ...] = ()
    base_key: str | None = None


_scope: ContextVar[_Scope | None] = ContextVar("aiocache_ext_key_scope", default=None)


def install(cache: BaseCache) -> None:
    """Wrap ``cache.build_key`` (once per cache): the scope's part is added, and keys
    stay within the backend's limit (memcached: 250 bytes) whatever their length (a
    digest past it)."""
    if getattr(cache, "_aiocache_ext_scoped", False):
        return
    original = cache.build_key
    limit = backend_of(cache).max_key_bytes or 2**31

    def build_key(key: Any, namespace: str | None = None) -> Any:
        if isinstance(key, str):
            key = scoped_key(cache, key)
        built = original(key, namespace=namespace)
        overflow = len(built) - limit
        if overflow > 0 and isinstance(key, str):
            built = original(shorten(key, len(key) - overflow), namespace=namespace)
        return built

    cache.build_key = build_key
    cache._aiocache_ext_scoped = True


def scoped_key(cache: BaseCache, key: str) -> str:
    """``key`` with the current scope's part when it is the call's own key."""
    scope = _scope.get()
    if scope is None or scope.cache is not cache:
        return key
    if scope.base_key is None:
        scope.base_key = key
    return key + scope.suffix if key == scope.base_key else key


@contextmanager
def key_scope(cache: BaseCache, suffix: str, names: tuple[str, ...] = ()) -> Iterator[None]:
    """Within the block, the call's key on ``cache`` ends in ``suffix`` (nested: both).

    ``names`` are the varied header names, for rules that depend on them.
    """
    outer = _scope.get()
    if outer is not None and outer.cache is cache:
        suffix, names = outer.suffix + suffix, outer.names + names
    token = _scope.set(_Scope(cache, suffix, names))
    try:
        yield
    finally:
        _scope.reset(token)


def varied_headers(cache: BaseCache) -> tuple[str, ...]:
    """Header names the current call varies on for ``cache`` (lower-cased)."""
    scope = _scope.get()
    return scope.names if scope is not None and scope.cache is cache else ()
