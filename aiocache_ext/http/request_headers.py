"""The request headers a shared cache acts on, read in one pass over raw ASGI headers.

Pure: no I/O, no Starlette objects. Repeated fields are kept in order (``Cache-Control``,
``Pragma``, ``Accept-Encoding`` as lists; ``If-None-Match`` joined with ``", "``, which
RFC 9110 Section 5.3 makes equivalent).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple


class RequestHeaders(NamedTuple):
    host: bytes | None
    cache_control: list[str]
    pragma: list[str]
    authorization: bool
    if_none_match: str | None
    accept_encoding: list[str]


def read_request_headers(raw: Iterable[tuple[bytes, bytes]]) -> RequestHeaders:
    """The cache-relevant headers of ``raw`` (an ASGI ``scope["headers"]`` list)."""
    host: bytes | None = None
    cache_control: list[str] = []
    pragma: list[str] = []
    authorization = False
    matches: list[str] = []
    accept_encoding: list[str] = []
    for raw_name, raw_value in raw:
        name = raw_name.lower()
        if name == b"host":
            host = raw_value
        elif name == b"cache-control":
            cache_control.append(raw_value.decode("latin-1"))
        elif name == b"pragma":
            pragma.append(raw_value.decode("latin-1"))
        elif name == b"authorization":
            authorization = True
        elif name == b"if-none-match":
            matches.append(raw_value.decode("latin-1"))
        elif name == b"accept-encoding":
            accept_encoding.append(raw_value.decode("latin-1"))
    if_none_match = ", ".join(matches) if matches else None
    return RequestHeaders(
        host, cache_control, pragma, authorization, if_none_match, accept_encoding
    )
