"""Stable cache keys for ``aiocache.cached(key_builder=...)``.

A key is the function's identity plus its bound arguments in a canonical text form:
the same call gives the same key in every process and under every ``PYTHONHASHSEED``
(no ``hash()``, dicts and sets sorted), and the key is valid on every aiocache backend
(printable ASCII only, bounded length). Pure logic: no I/O, no aiocache import.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import inspect
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from starlette.background import BackgroundTasks
from starlette.requests import HTTPConnection
from starlette.responses import Response

from .backend_keys import DIGEST_CHARS, MEMCACHED_MAX_KEY_BYTES, escape, shorten
from .exceptions import UnstableKeyError

__all__ = [
    "DEFAULT_IGNORE_ARGS",
    "DEFAULT_IGNORE_TYPES",
    "INJECTED_ARGS",
    "KeyBuilder",
    "key_builder",
]

#: Left out of every key: they describe the transport, not the result.
#: ``HTTPConnection`` covers both ``Request`` and ``WebSocket``.
DEFAULT_IGNORE_TYPES: tuple[type, ...] = (HTTPConnection, Response, BackgroundTasks)
#: Parameters that ``stream_cached`` and ``vary_on_headers`` add to an endpoint's visible
#: signature (FastAPI then passes the request): never part of a key, so the key of a call
#: through the decorated function is the key of the same call to the endpoint itself.
INJECTED_ARGS: tuple[str, ...] = ("aiocache_ext_request", "aiocache_ext_response")
DEFAULT_IGNORE_ARGS: tuple[str, ...] = ("request", "response", *INJECTED_ARGS)

#: aiocache prepends the namespace to our key, so by default we keep 50 of memcached's
#: 250 bytes free for it.
DEFAULT_MAX_LENGTH = 200
_MIN_LENGTH = DIGEST_CHARS + 9

_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+>")
_SCALARS = (type(None), bool, int, float, complex, str, bytes)
_MEMO_TYPES = frozenset({type(None), bool, int, float, str})
_MEMO_SIZE = 4096


class _Unstable(Exception):
    """Internal signal: a value has no stable text; carries the offending type."""

    def __init__(self, value_type: type) -> None:
        self.value_type = value_type


def canonical(value: object) -> str:
    """Text of ``value`` that is equal for equal values in every process.

    Containers are rendered recursively with dict items and set members sorted, so
    insertion order and hash seed do not matter. Other objects use their own
    ``__repr__``/``__str__``; one that only has ``object``'s default (a memory
    address) raises ``_Unstable``.
    """
    kind = type(value)
    if kind in _SCALARS:
        return repr(value)
    if isinstance(value, enum.Enum):
        return f"{kind.__qualname__}.{value.name}"
    if isinstance(value, Mapping):
        items = sorted(f"{canonical(k)}:{canonical(v)}" for k, v in value.items())
        return _wrap(value, dict, "{", items, "}")
    if isinstance(value, (set, frozenset)):
        return _wrap(value, set, "{", sorted(map(canonical, value)), "}")
    if isinstance(value, list):
        return _wrap(value, list, "[", map(canonical, value), "]")
    if isinstance(value, tuple):
        return _wrap(value, tuple, "(", map(canonical, value), ")")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = (
            f"{f.name}={canonical(getattr(value, f.name))}" for f in dataclasses.fields(value)
        )
        return f"{kind.__qualname__}({','.join(fields)})"
    if kind.__repr__ is not object.__repr__:
        text = repr(value)
    elif kind.__str__ is not object.__str__:
        text = str(value)
    else:
        raise _Unstable(kind)
    if _ADDRESS.search(text):
        raise _Unstable(kind)
    return text


def _wrap(value: object, base: type, left: str, parts: Iterable[str], right: str) -> str:
    """Join rendered members; subclasses (``OrderedDict``, namedtuples) keep their name."""
    name = "" if type(value) is base else type(value).__qualname__
    return f"{name}{left}{','.join(parts)}{right}"


@functools.lru_cache(maxsize=4096)
def _signature(func: Callable[..., Any]) -> inspect.Signature | None:
    try:
        return inspect.signature(func)
    except (TypeError, ValueError):  # builtins and C callables without a signature
        return None


@functools.lru_cache(maxsize=4096)
def _keyword_parameters(func: Callable[..., Any]) -> dict[str, Any] | None:
    """Parameter names and defaults when every parameter can be passed by keyword and
    none is variadic; ``None`` otherwise."""
    signature = _signature(func)
    if signature is None:
        return None
    keyword_kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    if any(p.kind not in keyword_kinds for p in signature.parameters.values()):
        return None
    return {p.name: p.default for p in signature.parameters.values()}


class KeyBuilder:
    """A configurable key builder: ``KeyBuilder(...)(func, *args, **kwargs) -> str``.

    ``ignore_args`` (names) and ``ignore_types`` are added to the defaults
    (``request``/``response`` and Starlette's ``Request``, ``WebSocket``, ``Response``,
    ``BackgroundTasks``). ``max_length`` caps the key (default 200, which leaves room
    for a namespace within memcached's 250 bytes); a longer key keeps a readable start
    and ends in ``#`` plus a digest of the whole text.
    """

    def __init__(
        self,
        ignore_args: Iterable[str] = (),
        ignore_types: Iterable[type] = (),
        prefix: str = "",
        include_module: bool = True,
        max_length: int | None = None,
    ) -> None:
        self.ignore_args = frozenset((*DEFAULT_IGNORE_ARGS, *ignore_args))
        self.ignore_types = (*DEFAULT_IGNORE_TYPES, *ignore_types)
        self.prefix = prefix
        self.include_module = include_module
        limit = DEFAULT_MAX_LENGTH if max_length is None else int(max_length)
        if not _MIN_LENGTH <= limit <= MEMCACHED_MAX_KEY_BYTES:
            raise ValueError(
                f"max_length must be between {_MIN_LENGTH} and {MEMCACHED_MAX_KEY_BYTES} "
                f"(memcached's key limit), got {max_length!r}"
            )
        self.max_length = limit
        self._memo: dict[tuple[Any, ...], str] = {}

    def __repr__(self) -> str:
        return (
            f"KeyBuilder(ignore_args={sorted(self.ignore_args)!r}, "
            f"ignore_types={[t.__qualname__ for t in self.ignore_types]!r}, "
            f"prefix={self.prefix!r}, include_module={self.include_module!r}, "
            f"max_length={self.max_length!r})"
        )

    def __call__(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> str:
        memo_key = None if args else self._memo_key(func, kwargs)
        if memo_key is not None:
            found = self._memo.get(memo_key)
            if found is not None:
                return found
        key = self._build(func, args, kwargs)
        if memo_key is not None:
            if len(self._memo) >= _MEMO_SIZE:
                self._memo.clear()
            self._memo[memo_key] = key
        return key

    def _memo_key(self, func: Callable[..., Any], kwargs: dict[str, Any]) -> tuple[Any, ...] | None:
        """A hashable identity of a keyword-only call whose kept values are plain scalars
        (the usual route call), so its key is computed once; ``None`` for anything else."""
        parts: list[tuple[str, type, Any]] = []
        for name, value in kwargs.items():
            if name in self.ignore_args or isinstance(value, self.ignore_types):
                continue
            if type(value) not in _MEMO_TYPES:
                return None
            # The type: 1, 1.0 and True differ; a float's repr: 0.0 and -0.0 differ too.
            parts.append((name, type(value), repr(value) if type(value) is float else value))
        return (func, *parts)

    def _build(
        self, func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> str:
        name = func.__qualname__ if hasattr(func, "__qualname__") else repr(func)
        if self.include_module:
            name = f"{getattr(func, '__module__', None) or ''}:{name}"
        parts = []
        for arg_name, value in self._arguments(func, args, kwargs):
            if arg_name in self.ignore_args or isinstance(value, self.ignore_types):
                continue
            try:
                parts.append(f"{arg_name}={canonical(value)}")
            except _Unstable as exc:
                raise UnstableKeyError(name, arg_name, exc.value_type) from None
        return self._fit(f"{self.prefix}{name}({','.join(parts)})")

    def _arguments(
        self, func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> list[tuple[str, Any]]:
        """Arguments by parameter name with defaults applied, so every spelling of a call
        (positional, keyword, default) yields the same list.
        """
        simple = _keyword_parameters(func)
        if simple is not None and not args and kwargs.keys() <= simple.keys():
            # The common route call (FastAPI passes keywords only): no Signature.bind.
            named = [(name, kwargs.get(name, default)) for name, default in simple.items()]
            if all(value is not inspect.Parameter.empty for _, value in named):
                return named
        signature = _signature(func)
        try:
            bound = signature.bind(*args, **kwargs) if signature else None
        except TypeError:
            bound = None  # the call itself is wrong; the function will say so
        if bound is None:
            positional = [(f"#{i}", value) for i, value in enumerate(args)]
            return positional + sorted(kwargs.items())
        bound.apply_defaults()
        result: list[tuple[str, Any]] = []
        for param_name, value in bound.arguments.items():
            kind = bound.signature.parameters[param_name].kind
            if kind is inspect.Parameter.VAR_KEYWORD:
                result.extend(sorted(value.items()))
            elif kind is inspect.Parameter.VAR_POSITIONAL:
                result.extend((f"*{i}", item) for i, item in enumerate(value))
            else:
                result.append((param_name, value))
        return result

    def _fit(self, text: str) -> str:
        return shorten(escape(text), self.max_length)


#: The ready key builder: ``cached(key_builder=key_builder)``.
key_builder = KeyBuilder()
