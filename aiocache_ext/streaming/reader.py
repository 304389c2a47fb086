"""Reads a stored body back in batches of segments, one batch ahead of the client."""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator

from ..exceptions import AiocacheExtError
from .format import Manifest
from .store import SegmentStore

#: Segments fetched per backend round trip (``MGET``/memcached multi-get).
DEFAULT_BATCH = 8

#: Batches fetched ahead of the one being sent.
READ_AHEAD = 2

#: Backoff between rounds of a segment read that failed (seconds).
RETRY_FIRST, RETRY_MAX = 0.05, 1.0


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
        #: Once the first batch is sent, a batch that cannot be reached is waited for up
        #: to the cache's timeout (a miss is no longer possible); before, not at all.
        self.patience = float(store.cache.timeout or 0.0)

    async def fetch(self, start: int, patience: float = 0.0) -> list[bytes]:
        """Segments ``start .. start + batch``; raises ``MissingSegmentError``.

        Each source the store has is tried in turn (a ``FallbackCache`` may switch tiers
        while a replay reads). Where a source failed (unreachable, or its client broken
        by a topology change), the round is tried again, with backoff, for up to
        ``patience`` seconds: the time a Redis Cluster or Sentinel takes to promote the
        replica that holds the same segments. Whatever comes back is checked, so trying
        again is always safe."""
        indexes = range(start, min(start + self.batch, self.manifest.segments))
        keys = [self.manifest.segment_key(self.key, i) for i in indexes]
        loop = asyncio.get_running_loop()
        give_up, delay = loop.time() + patience, RETRY_FIRST
        while True:
            failed: Exception | None = None
            for source in range(self.store.sources):
                try:
                    return self._checked(start, await self.store.get_segments(keys, source))
                except MissingSegmentError as exc:
                    missing = exc
                except Exception as exc:
                    failed = exc
            if failed is None:
                raise missing
            if loop.time() + delay > give_up:
                raise MissingSegmentError(f"segments of {self.key!r} unreadable") from failed
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX)

    def _checked(self, start: int, values: list[bytes | None]) -> list[bytes]:
        check = self.store.integrity.segment_check
        found = []
        for index, value in enumerate(values, start):
            if (
                value is None
                or len(value) != self.manifest.segment_length(index)
                or check(value) != self.manifest.checks[index]
            ):
                raise MissingSegmentError(f"segment {index} of {self.key!r} is missing or altered")
            found.append(value)
        return found

    async def stream(self, first: list[bytes]) -> AsyncIterator[bytes]:
        """Yield every segment, starting from the already fetched first batch, while the
        next ``READ_AHEAD`` batches are fetched and checked: with two in flight, one
        batch's check overlaps the next one's network wait. (Checks in a worker thread
        were slower: handing the GIL back costs more than CRC-32 of a batch.)"""
        ahead: collections.deque[asyncio.Future[list[bytes]]] = collections.deque()
        start = len(first)
        batch = first
        try:
            while True:
                while len(ahead) < READ_AHEAD and start < self.manifest.segments:
                    ahead.append(asyncio.ensure_future(self.fetch(start, self.patience)))
                    start += self.batch
                for segment in batch:
                    yield segment
                if not ahead:
                    return
                batch = await ahead.popleft()
        finally:
            for pending in ahead:  # the client went away, or a batch was refused
                pending.cancel()
                pending.add_done_callback(_retrieve)


def _retrieve(future: asyncio.Future[list[bytes]]) -> None:
    """Mark a read-ahead's outcome as seen: its failure no longer matters."""
    if not future.cancelled():
        future.exception()
