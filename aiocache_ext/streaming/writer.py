"""Stores a body while it streams: segments as they fill, the manifest last.

Nothing is visible until ``commit``; ``abort`` (or a ``commit`` that finds the body
unusable) deletes the segments already written. Memory is bounded by one segment.
"""

from __future__ import annotations

import hashlib
import logging
import time

from .._log import log_once
from ..http.etag import strong_etag
from .format import Manifest, Segmenter, new_write_id, segment_key, stored_headers
from .store import SegmentStore, segment_ttl

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
    ) -> None:
        self.store = store
        self.inline_size = inline_size
        self.key = key
        self.ttl = ttl
        self.max_size = max_size
        self.write_id = new_write_id()
        self.started = time.time()
        self.size = 0
        self.abandoned: str | None = None
        self._segmenter = Segmenter(segment_size)
        self._digest = hashlib.blake2b(digest_size=16)
        self._written = 0

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

    async def commit(self, status: int, raw_headers: list[tuple[bytes, bytes]]) -> Manifest | None:
        """Write the last segment, then the manifest; ``None`` when nothing was stored."""
        if self.abandoned:
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
        manifest_ttl: int | None = None
        if self.ttl is not None:
            # The entry's life counts from the first segment, so every segment outlives it.
            manifest_ttl = int(self.ttl - (now - self.started))
            if manifest_ttl < 1:
                await self.abort("stream took longer than the ttl")
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
        )
        try:
            await self.store.put_manifest(self.key, manifest, manifest_ttl)
        except Exception as exc:
            await self.abort(f"manifest write failed: {exc!r}")
            return None
        return manifest

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
        try:
            await self.store.put_segment(key, segment, segment_ttl(self.ttl))
        except Exception as exc:
            await self.abort(f"segment write failed: {exc!r}")
