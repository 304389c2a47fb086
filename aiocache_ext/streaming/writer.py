"""Stores a body while it streams: segments as they fill, the manifest last.

Nothing is visible until ``commit``; ``abort`` (or a ``commit`` that finds the body
unusable) deletes the segments already written. Memory is bounded by one segment.
Segments are always keyed from the route's base key; the manifest goes to the base key,
or, when the endpoint's ``Vary`` names headers the key does not already hold, to the
variant key of this request, with a ``VaryIndex`` at the base key.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Sequence

from .._log import log_once
from ..http.cache_control import parse_cache_control
from ..http.etag import strong_etag
from ..http.staleness import NEVER_STALE, StaleRules
from ..http.vary import parse_vary
from .format import (
    SEGMENT_GRACE,
    Manifest,
    Segmenter,
    VaryIndex,
    header_values,
    new_write_id,
    segment_key,
    stored_headers,
)
from .store import SegmentStore, segment_ttl

RawHeaders = Sequence[tuple[bytes, bytes]]

#: Maps the header names an endpoint's ``Vary`` lists (and the key does not cover) to
#: the key this request's variant is stored under.
VariantKey = Callable[[Sequence[str]], str]

logger = logging.getLogger(__name__)


class StreamWriter:
    """One write of one entry. ``feed`` chunks, then ``commit`` or ``abort``."""

    def __init__(
        self,
        store: SegmentStore,
        key: str,
        ttl: float | None,
        segment_size: int,
        max_size: int,
        inline_size: int = 0,
        token: str | None = None,
        variant_key: VariantKey | None = None,
        covered: Sequence[str] = (),
        stale: StaleRules = NEVER_STALE,
    ) -> None:
        self.store = store
        self.token = token  # the namespace token read before the endpoint ran
        self.variant_key = variant_key
        self.covered = frozenset(covered)
        self.inline_size = inline_size
        self.key = key
        self.ttl = ttl
        self.stale = stale  # the route's options; the endpoint's Cache-Control may differ
        self.max_size = max_size
        self.write_id = new_write_id()
        self.started = time.time()
        self.size = 0
        self.abandoned: str | None = None
        self._segmenter = Segmenter(segment_size)
        self._digest = hashlib.blake2b(digest_size=16)
        self._written = 0
        self._checks: list[str] = []

    async def feed(self, chunk: bytes) -> None:
        if self.abandoned or not chunk:
            return
        self.size += len(chunk)
        if self.size > self.max_size:
            await self.abort(f"body over max_size={self.max_size}")
            return
        self._digest.update(chunk)
        for segment in self._segmenter.feed(chunk):
            await self._put(segment)

    async def commit(self, status: int, raw_headers: RawHeaders) -> Manifest | None:
        """Write the last segment, then the manifest; ``None`` when nothing was stored."""
        if self.abandoned:
            return None
        declared = header_values(raw_headers, b"content-length")
        if declared and declared != [str(self.size)]:
            await self.abort(f"body length differs from Content-Length: {self.size} vs {declared}")
            return None
        rest = self._segmenter.finish()
        inline = None
        if self._written == 0 and self.size <= self.inline_size:
            inline = rest or b""  # small body: kept in the manifest, no segment at all
        elif rest is not None:
            await self._put(rest)
        if self.abandoned:
            return None
        now = time.time()
        # Readable for ``ttl`` from now, however long the stream took; the endpoint's own
        # freshness caps it, never extends it. Kept past it for as long as it may be
        # served stale.
        manifest_ttl = self.ttl
        cache_control = parse_cache_control(header_values(raw_headers, b"cache-control"))
        stale = self.stale.for_response(cache_control)
        lifetime = cache_control.shared_lifetime
        if lifetime is not None:
            manifest_ttl = lifetime if manifest_ttl is None else min(manifest_ttl, lifetime)
        if manifest_ttl is not None and manifest_ttl <= 0:
            await self.abort("response stale on arrival")
            return None
        long_stream = now - self.started > SEGMENT_GRACE / 2
        if (
            self.ttl is not None
            and self._written
            and (long_stream or stale.longest > self.stale.longest)
        ):
            keys = [segment_key(self.key, self.write_id, i) for i in range(self._written)]
            try:  # its first segments must outlive the entry, stale window included
                await self.store.extend(keys, SEGMENT_GRACE + self.ttl + stale.longest)
            except Exception as exc:
                await self.abort(f"segment ttl extension failed: {exc!r}")
                return None
        headers = stored_headers(raw_headers)
        etag = next((v.decode("latin-1") for k, v in headers if k.lower() == b"etag"), None)
        manifest = Manifest(
            status=status,
            headers=headers,
            size=self.size,
            segment_size=self._segmenter.size,
            write_id=self.write_id,
            etag=etag or strong_etag(self._digest.hexdigest()),
            stored_at=now,
            expires_at=None if manifest_ttl is None else now + manifest_ttl,
            inline=inline,
            checks=tuple(self._checks),
            token=self.token,
            stale_while_revalidate=stale.while_revalidate,
            stale_if_error=stale.if_error,
        )
        varied = [
            n for n in parse_vary(header_values(raw_headers, b"vary")) if n not in self.covered
        ]
        manifest_key = self.key
        if varied and self.variant_key is not None:
            manifest_key = self.variant_key(varied)
        replaced = await self._current(manifest_key)
        try:
            kept = None if manifest_ttl is None else manifest_ttl + stale.longest
            await self.store.put_record(manifest_key, manifest, kept)
            if manifest_key != self.key:
                index = VaryIndex(tuple(varied))
                await self.store.put_record(self.key, index, self._segment_ttl(stale))
        except Exception as exc:
            await self.abort(f"manifest write failed: {exc!r}")
            return None
        if replaced is not None and replaced.write_id != self.write_id:
            await self._free(replaced)
        return manifest

    async def _current(self, key: str) -> Manifest | None:
        """The entry this write replaces, if any (its segments are freed after)."""
        try:
            found = await self.store.get_entry(key)
        except Exception:
            return None
        return found if isinstance(found, Manifest) else None

    async def _free(self, old: Manifest) -> None:
        """Let a replaced write's segments go: not at once (a replay of it may be under
        way), but within ``SEGMENT_GRACE``, also when they were stored with no ttl."""
        keys = [old.segment_key(self.key, i) for i in range(old.segments)]
        if not keys:
            return
        try:
            await self.store.extend(keys, SEGMENT_GRACE)
        except Exception as exc:
            log_once(logger, "free-replaced", "replaced segments not freed error=%r", exc)

    def _segment_ttl(self, stale: StaleRules) -> float | None:
        return segment_ttl(None if self.ttl is None else self.ttl + stale.longest)

    async def abort(self, reason: str) -> None:
        """Give up this write and delete what it stored (best effort: segments expire)."""
        if self.abandoned:
            return
        self.abandoned = reason
        log_once(logger, f"abort:{reason.split(':')[0]}", "stream not stored reason=%s", reason)
        keys = [segment_key(self.key, self.write_id, i) for i in range(self._written)]
        if keys:
            try:
                await self.store.settle()  # a write cut short may still be landing
                await self.store.delete(keys)
            except Exception as exc:  # the backend is failing: the segments will expire
                log_once(logger, "abort-cleanup", "stream cleanup failed error=%r", exc)

    async def _put(self, segment: bytes) -> None:
        key = segment_key(self.key, self.write_id, self._written)
        self._written += 1  # counted first: a write cut short may still have landed
        self._checks.append(self.store.integrity.segment_check(segment))
        try:
            await self.store.put_segment(key, segment, self._segment_ttl(self.stale))
        except Exception as exc:
            await self.abort(f"segment write failed: {exc!r}")
