"""A hit assembled from its entry: ``304``, ``HEAD``, an inline or a streamed body, with
the headers a hit carries (``Age``, ``Cache-Control``, the hit marker); and the headers
added to a miss. Reads go through the ``SegmentStore``; nothing here decides whether an
entry may be used (that is the lookup's job)."""

from __future__ import annotations

import dataclasses
import logging
import time

from starlette.responses import Response

from .._log import log_once
from ..http.etag import if_none_match_matches, not_modified_headers
from ..http.policy import age, client_cache_control
from .format import Manifest
from .reader import SegmentReader
from .responses import RawHeaders, ReplayResponse
from .store import SegmentStore

logger = logging.getLogger(__name__)
_NO_CACHE = (b"cache-control", b"no-cache")


@dataclasses.dataclass(frozen=True)
class ReplayOptions:
    """How hits and misses are marked: ``marker`` names the ``HIT``/``MISS`` header
    (``None``: none); ``client_max_age`` lets clients reuse a response for the entry's
    remaining lifetime instead of revalidating; ``read_batch`` segments per read."""

    marker: bytes | None
    client_max_age: bool
    read_batch: int


async def replay(
    store: SegmentStore,
    entry: Manifest,
    key: str,
    manifest_key: str,
    method: str,
    if_none_match: str | None,
    options: ReplayOptions,
    stale: bool = False,
) -> Response | None:
    """The response for a valid entry stored under ``key`` (its manifest under
    ``manifest_key``), marked a hit or ``stale``; ``None`` when its first segments are
    gone (nothing sent yet, so it is a miss, and the broken manifest is dropped)."""
    headers = hit_headers(entry, time.time(), options, b"STALE" if stale else b"HIT")
    if if_none_match is not None and if_none_match_matches(if_none_match, entry.etag):
        keep = not_modified_headers({k.decode("latin-1"): v.decode("latin-1") for k, v in headers})
        return Response(status_code=304, headers=keep)
    if method == "HEAD":
        return ReplayResponse(entry, headers, None, None, None)
    if entry.inline is not None:
        return ReplayResponse(entry, headers, None, [entry.inline], None)
    reader = SegmentReader(store, key, entry, options.read_batch)

    async def forget() -> None:
        try:
            await store.delete([manifest_key])
        except Exception as exc:
            log_once(logger, "forget", "could not drop a broken entry error=%r", exc)

    try:
        first = await reader.fetch(0)
    except Exception as exc:  # a segment is gone: nothing sent yet, so it is a miss
        log_once(logger, f"segments:{type(exc).__name__}", "entry unusable, miss error=%r", exc)
        await forget()
        return None
    return ReplayResponse(entry, headers, reader, first, forget)


def hit_headers(
    manifest: Manifest, now: float, options: ReplayOptions, mark: bytes = b"HIT"
) -> RawHeaders:
    """The stored headers, with ``Age`` (since the entry was stored: past its freshness
    too), the ``Cache-Control`` clients get, the marker."""
    headers = [*manifest.replay_headers, (b"age", str(age(manifest.stored_at, now)).encode())]
    if options.client_max_age:
        remaining = None if manifest.expires_at is None else manifest.expires_at - now
        sent = client_cache_control(manifest.cache_control, remaining, client_max_age=True)
        if sent is not None:
            headers.append((b"cache-control", sent.encode()))
    elif manifest.cache_control is None:
        headers.append(_NO_CACHE)  # what client_cache_control gives without max-age
    if options.marker:
        headers.append((options.marker, mark))
    return headers


def miss_headers(response: Response, ttl: float | None, options: ReplayOptions) -> RawHeaders:
    """Headers added to a response the endpoint produced: the ``Cache-Control`` clients
    get when it sets none, and the marker."""
    extra: RawHeaders = []
    if "cache-control" not in response.headers:
        sent = client_cache_control(None, ttl, client_max_age=options.client_max_age)
        extra.append((b"cache-control", (sent or "no-cache").encode()))
    if options.marker:
        extra.append((options.marker, b"MISS"))
    return extra
