"""A hit assembled from its entry: ``304``, ``HEAD``, an inline or a streamed body, with
the headers a hit carries (``Age``, ``Cache-Control``, the hit marker); and the headers
added to a miss. Reads go through the ``SegmentStore``; nothing here decides whether an
entry may be used (that is the lookup's job)."""

from __future__ import annotations

import dataclasses
import logging
import math
import time

from starlette.responses import Response

from .._log import log_once
from ..http.cache_status import HIT, Outcome
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
    remaining lifetime instead of revalidating; ``read_batch`` segments per read;
    ``cache_status`` names this cache in an RFC 9211 ``Cache-Status`` header (``None``:
    none)."""

    marker: bytes | None
    client_max_age: bool
    read_batch: int
    cache_status: str | None = None


async def replay(
    store: SegmentStore,
    entry: Manifest,
    key: str,
    manifest_key: str,
    method: str,
    if_none_match: str | None,
    options: ReplayOptions,
    stale: bool = False,
    outcome: Outcome = HIT,
) -> Response | None:
    """The response for a valid entry stored under ``key`` (its manifest under
    ``manifest_key``), marked a hit or ``stale`` (and in ``Cache-Status``, what the
    cache did: ``outcome``); ``None`` when its first segments are gone (nothing sent
    yet, so it is a miss, and the broken manifest is dropped)."""
    now = time.time()
    marks = hit_marks(entry, now, options, stale, outcome)
    ready = ready_hit(entry, now, method, if_none_match, options, marks)
    if ready is not None:
        return ready
    headers = hit_headers(entry, now, options, marks)
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


def ready_hit(
    entry: Manifest,
    now: float,
    method: str,
    if_none_match: str | None,
    options: ReplayOptions,
    marks: RawHeaders,
) -> Response | None:
    """The response for a valid entry that needs no segment read (a ``304``, a ``HEAD``,
    an inline body), built at once, with ``marks`` (``hit_marks``); ``None``: its body
    is in segments (``replay``)."""
    if if_none_match is not None and if_none_match_matches(if_none_match, entry.etag):
        stored = hit_headers(entry, now, options, ())
        keep = not_modified_headers(_text(stored))
        return Response(status_code=304, headers={**keep, **_text(marks)})
    if method == "HEAD":
        return ReplayResponse(entry, hit_headers(entry, now, options, marks), None, None, None)
    if entry.inline is not None:
        headers = hit_headers(entry, now, options, marks)
        return ReplayResponse(entry, headers, None, [entry.inline], None)
    return None


def hit_headers(
    manifest: Manifest, now: float, options: ReplayOptions, marks: RawHeaders | tuple[()]
) -> RawHeaders:
    """The stored headers, with ``Age`` (since the entry was stored: past its freshness
    too), the ``Cache-Control`` clients get, the ``marks``."""
    headers = [*manifest.replay_headers, (b"age", str(age(manifest.stored_at, now)).encode())]
    if options.client_max_age:
        remaining = None if manifest.expires_at is None else manifest.expires_at - now
        sent = client_cache_control(manifest.cache_control, remaining, client_max_age=True)
        if sent is not None:
            headers.append((b"cache-control", sent.encode()))
    elif manifest.cache_control is None:
        headers.append(_NO_CACHE)  # what client_cache_control gives without max-age
    headers.extend(marks)
    return headers


def hit_headers_until(manifest: Manifest, now: float) -> float:
    """Until when the headers a hit on ``manifest`` gets at ``now`` stay the same, and
    it stays fresh: ``Age`` counts whole seconds since it was stored, the freshness left
    (``Cache-Status``'s ttl, the clients' ``max-age``) whole seconds until it expires."""
    until = manifest.stored_at + age(manifest.stored_at, now) + 1
    expires_at = manifest.expires_at
    if expires_at is None:
        return until
    return min(until, expires_at - max(0, math.floor(expires_at - now)))


def hit_marks(
    manifest: Manifest,
    now: float,
    options: ReplayOptions,
    stale: bool = False,
    outcome: Outcome = HIT,
) -> RawHeaders:
    """The hit marker (``STALE`` when ``stale``), and ``Cache-Status`` (what the cache
    did: ``outcome``) with the entry's freshness left."""
    marks: RawHeaders = []
    if options.marker:
        marks.append((options.marker, b"STALE" if stale else b"HIT"))
    if options.cache_status is not None:
        left = None if manifest.expires_at is None else manifest.expires_at - now
        marks.append((b"cache-status", outcome.header(options.cache_status, left)))
    return marks


def _text(headers: RawHeaders) -> dict[str, str]:
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in headers}


def miss_headers(
    response: Response, ttl: float | None, options: ReplayOptions, outcome: Outcome | None
) -> RawHeaders:
    """Headers added to a response the endpoint produced: the ``Cache-Control`` clients
    get when it sets none, the marker, and ``Cache-Status`` when the ``outcome`` is known
    (``None``: the response is to be stored, which ``miss_status`` tells once its
    headers say whether it may be)."""
    extra: RawHeaders = []
    if "cache-control" not in response.headers:
        sent = client_cache_control(None, ttl, client_max_age=options.client_max_age)
        extra.append((b"cache-control", (sent or "no-cache").encode()))
    if options.marker:
        extra.append((options.marker, b"MISS"))
    if outcome is not None and options.cache_status is not None:
        extra.append((b"cache-status", outcome.header(options.cache_status)))
    return extra


def miss_status(
    options: ReplayOptions, ttl: float | None, why: Outcome, not_stored: str | None
) -> RawHeaders:
    """``Cache-Status`` for a response forwarded ``why`` and on its way to being stored,
    once its headers said whether it may be (``not_stored``: why not)."""
    if options.cache_status is None:
        return []
    stored = not_stored is None
    outcome = dataclasses.replace(why, stored=stored, detail=not_stored or why.detail)
    return [(b"cache-status", outcome.header(options.cache_status, ttl if stored else None))]
