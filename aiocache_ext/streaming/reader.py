"""Reads a stored body back in batches of segments, one batch ahead of the client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from ..exceptions import AiocacheExtError
from .format import Manifest
from .store import SegmentStore

#: Segments fetched per backend round trip (``MGET``/memcached multi-get).
DEFAULT_BATCH = 8


class MissingSegmentError(AiocacheExtError):
    """A segment of a committed entry is gone (expired, evicted) or has the wrong size."""


class SegmentReader:
    """Batches of one entry's segments, in order, each checked for presence, size and its
    check value in the manifest (so no other bytes are ever sent as this write's)."""

    def __init__(
        self, store: SegmentStore, key: str, manifest: Manifest, batch: int = DEFAULT_BATCH
    ) -> None:
        self.store = store
        self.key = key
        self.manifest = manifest
        self.batch = batch

    async def fetch(self, start: int) -> list[bytes]:
        """Segments ``start .. start + batch``; raises ``MissingSegmentError``."""
        indexes = range(start, min(start + self.batch, self.manifest.segments))
        values = await self.store.get_segments(
            [self.manifest.segment_key(self.key, i) for i in indexes]
        )
        check = self.store.integrity.segment_check
        for index, value in zip(indexes, values):
            if (
                value is None
                or len(value) != self.manifest.segment_length(index)
                or check(value) != self.manifest.checks[index]
            ):
                raise MissingSegmentError(f"segment {index} of {self.key!r} is missing or altered")
        return [v for v in values if v is not None]

    async def stream(self, first: list[bytes]) -> AsyncIterator[bytes]:
        """Yield every segment, starting from the already fetched first batch, while the
        next batch is being fetched."""
        batch, start = first, len(first)
        while batch:
            pending = (
                asyncio.ensure_future(self.fetch(start)) if start < self.manifest.segments else None
            )
            try:
                for segment in batch:
                    yield segment
            except BaseException:
                if pending is not None:
                    pending.cancel()
                raise
            batch = await pending if pending is not None else []
            start += len(batch)
