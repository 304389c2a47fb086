"""The request headers a shared cache acts on, read in one pass over raw ASGI headers.

Pure: no I/O, no Starlette objects. Repeated fields are kept in order (``Cache-Control``,
``Pragma``, ``Accept-Encoding`` as tuples; ``If-None-Match`` joined with ``", "``, which
RFC 9110 Section 5.3 makes equivalent).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import NamedTuple


class RequestHeaders(NamedTuple):
    host: bytes | None
    cache_control: tuple[str, ...]
    pragma: tuple[str, ...]
    authorization: bool
    if_none_match: str | None
    accept_encoding: tuple[str, ...]


#: The fields read besides ``Host``; a request usually has none of them.
_READ = frozenset(
    (b"cache-control", b"pragma", b"authorization", b"if-none-match", b"accept-encoding")
)


def read_request_headers(raw: Iterable[tuple[bytes, bytes]]) -> RequestHeaders:
    """The cache-relevant headers of ``raw`` (an ASGI ``scope["headers"]`` list)."""
    host: bytes | None = None
    found: list[tuple[bytes, str]] | None = None
    for raw_name, raw_value in raw:
        name = raw_name.lower()
        if name == b"host":
            host = raw_value
        elif name in _READ:
            if found is None:
                found = []
            found.append((name, raw_value.decode("latin-1")))
    if found is None:  # every hit of a plain GET: one small tuple, kept per host
        return _only(host) if host is None or len(host) <= 255 else _headers(host, [])
    return _headers(host, found)


def _headers(host: bytes | None, found: list[tuple[bytes, str]]) -> RequestHeaders:
    def values(name: bytes) -> tuple[str, ...]:
        return tuple(value for field, value in found if field == name)

    matches = values(b"if-none-match")
    return RequestHeaders(
        host,
        values(b"cache-control"),
        values(b"pragma"),
        any(field == b"authorization" for field, _ in found),
        ", ".join(matches) if matches else None,
        values(b"accept-encoding"),
    )


@functools.lru_cache(maxsize=64)
def _only(host: bytes | None) -> RequestHeaders:
    return _headers(host, [])
