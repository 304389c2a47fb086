"""Content negotiation for ``Accept-Encoding`` (RFC 9110 Section 12.5.3). Pure."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.request import parse_http_list

#: Media types that are never compressed: streamed events must reach the client as they
#: are produced, and gRPC frames carry their own compression (as GZipMiddleware does).
UNCOMPRESSED_MEDIA = frozenset({"text/event-stream", "application/grpc"})


def accepts(coding: str, values: Iterable[str]) -> bool:
    """Whether ``Accept-Encoding`` values accept ``coding`` (case-insensitive).

    A coding listed with ``q=0`` is refused even when ``*`` is accepted; ``*`` accepts
    every coding not listed; an invalid ``q`` counts as ``0``.
    """
    wanted = coding.lower()
    star: float | None = None
    for value in values:
        for item in parse_http_list(value):
            name, _, params = item.partition(";")
            name = name.strip().lower()
            weight = _quality(params)
            if name == wanted:
                return weight > 0
            if name == "*":
                star = weight
    return star is not None and star > 0


def compressible(media_type: str) -> bool:
    """Whether a response of ``media_type`` (a ``Content-Type`` value) may be compressed."""
    bare = media_type.partition(";")[0].strip().lower()
    return bare not in UNCOMPRESSED_MEDIA and not bare.startswith("application/grpc+")


def _quality(params: str) -> float:
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            try:
                weight = float(value.strip())
            except ValueError:
                return 0.0
            return weight if 0.0 <= weight <= 1.0 else 0.0
    return 1.0
