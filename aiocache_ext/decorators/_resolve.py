"""Which cache a decorator (or ``invalidate``) acts on, resolved one way for all of them."""

from __future__ import annotations

from typing import Any

from aiocache import Cache, caches
from aiocache.base import BaseCache


def resolve_cache(cache: Any, alias: str | None = None, **build: Any) -> BaseCache:
    """The cache that ``cache`` names, as aiocache's ``cached`` reads it, and more:

    - a cache instance: itself (shared with whoever else uses it);
    - a function decorated with ``cached``/``stream_cached``: its cache;
    - ``alias``, or ``cache`` given as a string: that alias of ``caches``;
      ``None``: the ``"default"`` alias;
    - a cache class (``Cache.MEMORY``, ``Cache.REDIS``, ...): a new instance built with
      ``build`` (``serializer``, ``namespace``, ``plugins``, backend arguments).
    """
    if isinstance(cache, BaseCache):
        return cache
    if alias:
        return caches.get(alias)
    if cache is None or isinstance(cache, str):
        return caches.get(cache or "default")
    found = getattr(cache, "cache", None)
    if isinstance(found, BaseCache):
        return found
    if isinstance(cache, type) and issubclass(cache, BaseCache):
        return Cache(cache, **build)
    raise TypeError(
        f"not a cache: {cache!r}. HINT: pass a cache instance, a class such as Cache.REDIS, "
        "an aiocache alias, or a function decorated with @cached / @stream_cached"
    )
