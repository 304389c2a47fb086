"""Strong ETags from body bytes, and ``If-None-Match`` (RFC 9110 Sections 8.8.3, 13.1.2)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from urllib.request import parse_http_list

#: Headers a 304 carries, taken from the 200 it stands for (RFC 9110 Section 15.4.5).
NOT_MODIFIED_HEADERS = frozenset(
    {"cache-control", "content-location", "date", "etag", "expires", "vary"}
)


def body_digest(chunks: Iterable[bytes]) -> str:
    """A stable digest of a body (BLAKE2b-128): equal in every process, unlike ``hash()``."""
    digest = hashlib.blake2b(digest_size=16)
    for chunk in chunks:
        digest.update(chunk)
    return digest.hexdigest()


def strong_etag(digest: str) -> str:
    """A strong entity tag: the quoted digest (RFC 9110 Section 8.8.3)."""
    return f'"{digest}"'


def if_none_match_matches(header: str | None, etag: str) -> bool:
    """True when ``If-None-Match`` names ``etag``, so a GET/HEAD gets ``304``.

    ``*`` matches any current representation; comparison is weak (RFC 9110 Section
    13.1.2: ``W/"x"`` matches ``"x"``). A malformed header matches nothing, so the
    client gets the full response rather than a wrong ``304``.
    """
    if header is None:
        return False
    wanted = _opaque(etag)
    for item in parse_http_list(header):
        if item == "*":
            return True
        if wanted is not None and _opaque(item) == wanted:
            return True
    return False


def not_modified_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The subset of a ``200``'s headers that its ``304`` repeats."""
    return {k: v for k, v in headers.items() if k.lower() in NOT_MODIFIED_HEADERS}


def _opaque(tag: str) -> str | None:
    """The quoted part of an entity tag without ``W/``; ``None`` when malformed."""
    tag = tag.strip()
    if tag.startswith("W/"):
        tag = tag[2:]
    if len(tag) < 2 or tag[0] != '"' or tag[-1] != '"' or '"' in tag[1:-1]:
        return None
    return tag
