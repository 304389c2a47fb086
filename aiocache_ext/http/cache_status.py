"""The ``Cache-Status`` response header (RFC 9211): what this cache did with a request,
as one list member named for the cache. Pure: names and outcomes in, header text out.

A hit is ``<name>; hit; ttl=<remaining freshness>`` (negative once stale: served while it
is refreshed). Otherwise the request went forward to the endpoint, and ``fwd`` says why:
``miss`` (nothing usable stored), ``request`` (the request's own ``Cache-Control``),
``method`` (not ``GET``/``HEAD``), ``bypass`` (the cache does not handle it, e.g. an
``Authorization`` header), ``stale`` (a stale entry served because the endpoint failed,
with ``fwd-status``); ``stored`` says the response is being stored, ``detail`` why not.
"""

from __future__ import annotations

import dataclasses
import math
import re

#: An RFC 8941 token: what a cache's name must be.
_TOKEN = re.compile(r"[A-Za-z*][A-Za-z0-9!#$%&'*+\-.^_`|~:/]*\Z")


def check_name(name: str) -> str:
    """``name`` as given, if it may name a cache in ``Cache-Status``; else a clear error."""
    if not isinstance(name, str) or not _TOKEN.match(name):
        raise ValueError(
            f"cache_status={name!r} is not a valid cache name for the Cache-Status header "
            "(RFC 9211: a token, e.g. 'api-cache'). HINT: start with a letter, no spaces"
        )
    return name


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What the cache did: answered from what it holds (``fwd`` is ``None``) or sent the
    request forward (``fwd``: why; ``fwd_status``: the endpoint's status when it matters;
    ``stored``: the response is being stored; ``detail``: why it is not)."""

    fwd: str | None = None
    fwd_status: int | None = None
    stored: bool = False
    detail: str | None = None

    def header(self, name: str, ttl: float | None = None) -> bytes:
        """The header's value for the cache ``name``, with ``ttl`` seconds of freshness
        left (``None``: not told)."""
        parts = [name, "hit" if self.fwd is None else f"fwd={self.fwd}"]
        if self.fwd_status is not None:
            parts.append(f"fwd-status={self.fwd_status}")
        if ttl is not None:
            parts.append(f"ttl={math.floor(ttl)}")
        if self.stored:
            parts.append("stored")
        if self.detail:
            parts.append(f"detail={_string(self.detail)}")
        return "; ".join(parts).encode("ascii")


HIT = Outcome()


def forwarded_because(reason: str) -> Outcome:
    """The outcome of a request the cache did not answer, from the policy's reason
    (``method=POST``, ``authorization``, ``request no-cache``, ...)."""
    if reason.startswith("method="):
        return Outcome("method")
    if reason.startswith("request "):
        return Outcome("request", detail=reason)
    return Outcome("bypass", detail=reason)


def _string(text: str) -> str:
    """``text`` as an RFC 8941 string (printable ASCII; quotes and backslashes escaped)."""
    printable = "".join(c if " " <= c <= "~" else "?" for c in text)
    return '"' + printable.replace("\\", "\\\\").replace('"', '\\"') + '"'
