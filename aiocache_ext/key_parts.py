"""The parts that decorators append to a route's key: the request's values of the
headers it varies on, and the origin it answered for. Pure: no I/O. Each part is
delimited and bounded (a digest past its bound), so parts never collide and a base key
of up to 200 characters still fits memcached with a namespace."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from .backend_keys import escape, shorten

#: The key part that ``vary_on_headers`` appends stays this short.
VARY_SUFFIX_MAX = 40
#: The key part that ``stream_cached`` appends for the request's origin stays this short.
HOST_SUFFIX_MAX = 60


def vary_suffix(values: Sequence[tuple[str, str | None]]) -> str:
    """The key part for normalised request header values (``None``: header absent).

    Absent and empty headers give different parts, and every header is delimited, so
    different header sets never collide.
    """
    text = ";".join(
        f"{name.lower()}={'-' if value is None else repr(value)}" for name, value in values
    )
    return shorten(f"|vary:{escape(text)}", VARY_SUFFIX_MAX)


def host_suffix(origin: str) -> str:
    """The key part for the scheme, host and root path a route answered for, so that
    absolute URLs built for one host are never served to another's visitors."""
    return shorten(f"|host:{escape(origin)}", HOST_SUFFIX_MAX)


def origin_suffix(scheme: str, host: bytes | None, server: Any, root_path: str) -> str:
    """``host_suffix`` for the origin ``request.url`` and ``url_for`` use: scheme, then
    the ``Host`` header (else the ``server`` address), then the root path. Remembered for
    the few origins a service has; a long (forged) ``Host`` is not kept in memory."""
    if host is not None and len(host) > 255:
        return _origin_suffix(scheme, host, server, root_path)
    return _remembered_origin_suffix(scheme, host, server, root_path)


def _origin_suffix(scheme: str, host: bytes | None, server: Any, root_path: str) -> str:
    if host is not None:
        name = host.decode("latin-1")
    elif not server:
        name = ""
    else:
        name = server[0] if server[1] is None else f"{server[0]}:{server[1]}"
    return host_suffix(f"{scheme}://{name}{root_path}")


_remembered_origin_suffix = functools.lru_cache(maxsize=1024)(_origin_suffix)
