"""``Cache-Control`` parsed once into a typed value (RFC 9111 Section 5.2)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from urllib.request import parse_http_list


@dataclasses.dataclass(frozen=True)
class CacheControl:
    """The directives a cache acts on; anything else is kept in ``extensions``.

    ``max_age``/``s_maxage`` are ``0`` for an invalid value (``max-age=abc``): RFC 9111
    Section 4.2.1 says to treat such a response as stale, and for a request that means
    "do not answer from the cache", the safe reading of a malformed header.
    """

    no_store: bool = False
    no_cache: bool = False
    private: bool = False
    public: bool = False
    max_age: int | None = None
    s_maxage: int | None = None
    #: RFC 5861: how long past its freshness the response may still be served while a
    #: refresh runs, or when the origin fails; ``None`` when not sent.
    stale_while_revalidate: int | None = None
    stale_if_error: int | None = None
    #: ``must-revalidate`` or ``proxy-revalidate`` (RFC 9111 Sections 5.2.2.2, 5.2.2.8):
    #: a shared cache never serves the response stale.
    must_revalidate: bool = False
    extensions: frozenset[str] = frozenset()

    @property
    def shared_lifetime(self) -> int | None:
        """How long a shared cache may serve the response: ``s-maxage``, else ``max-age``
        (RFC 9111 Section 4.2.1); ``None`` when the response sets neither."""
        return self.s_maxage if self.s_maxage is not None else self.max_age


def parse_cache_control(values: str | Iterable[str] | None) -> CacheControl:
    """Parse one header value or several (repeated header lines). Total: never raises.

    Directive names are case-insensitive, spacing and order are free, values may be
    quoted (``no-cache="Set-Cookie, X-Foo"``: commas inside quotes do not split). A
    repeated ``max-age`` keeps the smallest value, the conservative choice.
    """
    if values is None:
        return CacheControl()
    if isinstance(values, str):
        values = [values]
    flags: set[str] = set()
    ages: dict[str, int] = {}
    for value in values:
        for item in parse_http_list(value):
            name, _, argument = item.partition("=")
            name = name.strip().lower()
            if not name:
                continue
            if name in _DELTAS:
                seconds = _delta_seconds(argument)
                ages[name] = min(seconds, ages.get(name, seconds))
            else:
                flags.add(name)
    known = {"no-store", "no-cache", "private", "public", "must-revalidate", "proxy-revalidate"}
    return CacheControl(
        no_store="no-store" in flags,
        no_cache="no-cache" in flags,
        private="private" in flags,
        public="public" in flags,
        max_age=ages.get("max-age"),
        s_maxage=ages.get("s-maxage"),
        stale_while_revalidate=ages.get("stale-while-revalidate"),
        stale_if_error=ages.get("stale-if-error"),
        must_revalidate=bool(flags & {"must-revalidate", "proxy-revalidate"}),
        extensions=frozenset(flags - known),
    )


#: Directives that take delta-seconds (a repeated one keeps its smallest value).
_DELTAS = ("max-age", "s-maxage", "stale-while-revalidate", "stale-if-error")


def _delta_seconds(argument: str) -> int:
    """RFC 9111 Section 1.2.2: digits only; anything else counts as 0 (stale)."""
    text = argument.strip().strip('"')
    if not text.isascii() or not text.isdigit():
        return 0
    return min(int(text), 2**31)
