"""The per-request part of a route's key (the varied header values), added where the
route's decorator makes its key.

``vary_on_headers`` stands above a ``cached``/``stream_cached`` decorator whose key it
cannot pass in. For the duration of one call it sets the part in a context variable
(per task: concurrent requests never see each other's), and the decorator below adds it
in ``get_cache_key``, the method aiocache's decorators make every key with, whatever
their ``key=`` or ``key_builder`` (the seed's hand-written ``key_builder(f, **kwargs)``
included). ``adopt`` wraps that method on the one decorator object behind the route;
the cache, which other code may share, is never touched. The finished key is fitted to
the backend's limit (memcached: 250 bytes with the namespace).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from aiocache import cached

from ..backends.adapter import backend_of


@dataclasses.dataclass(frozen=True)
class _Scope:
    decorator: Any
    part: str
    names: tuple[str, ...]


_scope: ContextVar[_Scope | None] = ContextVar("aiocache_ext_key_scope", default=None)


@contextmanager
def key_scope(decorator: Any, part: str, names: tuple[str, ...]) -> Iterator[None]:
    """Within the block, ``decorator``'s key ends in ``part`` (nested scopes: both).
    ``names`` are the varied header names, for rules that depend on them."""
    outer = _scope.get()
    if outer is not None and outer.decorator is decorator:
        part, names = outer.part + part, outer.names + names
    token = _scope.set(_Scope(decorator, part, names))
    try:
        yield
    finally:
        _scope.reset(token)


def varied_headers(decorator: Any) -> tuple[str, ...]:
    """Header names the current call varies on for ``decorator`` (lower-cased)."""
    scope = _scope.get()
    return scope.names if scope is not None and scope.decorator is decorator else ()


def decorator_of(func: Callable[..., Any]) -> Any:
    """The ``cached`` object (``stream_cached`` included) behind a decorated function,
    or ``None``. Ours say it; aiocache's ``cached`` wrapper holds it in its closure."""
    found = getattr(func, "aiocache_ext_decorator", None)
    if found is not None:
        return found
    code, cells = getattr(func, "__code__", None), getattr(func, "__closure__", None) or ()
    for name, cell in zip(getattr(code, "co_freevars", ()), cells):
        if name == "self" and isinstance(cell.cell_contents, cached):
            return cell.cell_contents
    return None


def adopt(decorator: Any) -> None:
    """Make ``decorator`` (once) end its keys in the current scope's part, fitted to its
    backend's key limit."""
    if getattr(decorator, "_aiocache_ext_adopted", False):
        return
    original = decorator.get_cache_key
    fitted = backend_of(decorator.cache).key_fitter()

    def get_cache_key(f: Callable[..., Any], args: Any, kwargs: Any) -> str:
        key: str = original(f, args, kwargs)
        scope = _scope.get()
        if scope is not None and scope.decorator is decorator:
            key += scope.part
        return fitted(key)

    decorator.get_cache_key = get_cache_key
    decorator._aiocache_ext_adopted = True
