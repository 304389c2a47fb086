"""Starlette glue: the response that stores while it streams, and the one that replays.

Both are ``Response`` subclasses whose ``headers`` can still be changed after the
decorator returns them (``vary_on_headers`` adds ``Vary`` that way). The miss side wraps
any endpoint response at the ASGI ``send`` level (the Starlette ``GZipResponder`` pattern),
so ``StreamingResponse``, ``FileResponse`` and plain ``Response`` are stored alike.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from .._log import log_once
from ..http.etag import body_digest, strong_etag
from ..http.policy import SharedCacheRules, response_storable
from .format import Manifest, header_values
from .reader import MissingSegmentError, SegmentReader
from .writer import StreamWriter

logger = logging.getLogger(__name__)

RawHeaders = list[tuple[bytes, bytes]]


class StoringResponse(Response):
    """Sends the endpoint's response as it is produced and stores it on the way."""

    def __init__(
        self,
        inner: Response,
        writer: StreamWriter,
        extra_headers: RawHeaders,
        storable: Callable[[int, RawHeaders], str | None],
        done: Callable[[Manifest | None], Awaitable[Any] | None],
        encode: Callable[[Send], Send] | None = None,
        status: Callable[[str | None], RawHeaders] | None = None,
    ) -> None:
        self.inner = inner
        self.status_code = inner.status_code
        self.raw_headers = inner.raw_headers  # the same list: later changes reach the client
        self.background = None  # set by FastAPI for the endpoint's BackgroundTasks
        self._writer = writer
        self._extra = extra_headers
        self._storable = storable
        self._end = done
        self._pending: list[Awaitable[Any]] = []  # what ending left under way
        self._encode = encode
        self._status = status  # headers that tell whether it is stored (given why not)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        writer = self._writer
        status, endpoint_headers = 200, []
        start: Message | None = None
        commit: asyncio.Future[Manifest | None] | None = None

        async def tee(message: Message) -> None:
            nonlocal status, endpoint_headers, start, commit
            kind = message["type"]
            if kind == "http.response.start":
                status, endpoint_headers = message["status"], list(message.get("headers", []))
                reason = self._storable(status, endpoint_headers)
                told = [] if self._status is None else self._status(reason)
                if reason is not None:
                    self._done(None)  # waiters need not wait for a body that is not stored
                    await writer.abort(reason)
                start = {**message, "headers": [*endpoint_headers, *self._extra, *told]}
                return  # held until the first body message: it may tell the ETag
            if kind == "http.response.body":
                # Read before ``send``: middleware (GZipMiddleware) rewrites the message
                # in place, and the entry must hold the endpoint's own bytes.
                body, more_body = bytes(message.get("body", b"")), message.get("more_body", False)
                if start is not None:
                    if not more_body and not writer.abandoned:
                        _add_etag(start["headers"], endpoint_headers, body)
                    await send(start)
                    start = None
                await writer.feed(body)
                if not more_body:
                    # Stored before the client gets its last byte, so its next request
                    # hits. A task of its own: Starlette cancels the streaming task once
                    # the client has its last byte, and a commit must not stop halfway.
                    commit = asyncio.ensure_future(writer.commit(status, endpoint_headers))
                    commit.add_done_callback(self._committed)
                    await asyncio.wait([commit])
            elif start is not None:  # trailers, pathsend: the start goes first
                await send(start)
                start = None
            await send(message)

        if self.background is not None and self.inner.background is None:
            self.inner.background = self.background  # run after the body, as without us
        try:
            await self.inner(scope, receive, tee if self._encode is None else self._encode(tee))
        finally:
            if commit is None:  # the endpoint raised, or the client went away
                await writer.abort("stream did not complete")
                self._done(None)
        if commit is not None:
            await commit
        for pending in self._pending:  # the shared lease given back: waiters look now
            await asyncio.wait([asyncio.ensure_future(pending)])

    def _done(self, manifest: Manifest | None) -> None:
        pending = self._end(manifest)
        if pending is not None:
            self._pending.append(pending)

    def _committed(self, commit: asyncio.Future[Manifest | None]) -> None:
        failed = commit.cancelled() or commit.exception() is not None
        self._done(None if failed else commit.result())


def _add_etag(sent: RawHeaders, endpoint_headers: RawHeaders, body: bytes) -> None:
    """A body sent in one message is known before its headers go out: give the miss the
    ETag its entry will have, so the first reload already gets ``304``."""
    if not any(k.lower() == b"etag" for k, _ in endpoint_headers):
        sent.append((b"etag", strong_etag(body_digest([body])).encode()))


def storable_check(rules: SharedCacheRules) -> Callable[[int, RawHeaders], str | None]:
    """``None`` when a response may be stored, else the reason it may not."""

    def check(status: int, headers: RawHeaders) -> str | None:
        decision = response_storable(
            status,
            header_values(headers, b"cache-control"),
            header_values(headers, b"vary"),
            set_cookie=bool(header_values(headers, b"set-cookie")),
            rules=rules,
        )
        return None if decision else decision.reason

    return check


class ReplayResponse(Response):
    """A stored entry sent back: headers at once, then the body segment batch by batch.

    ``first`` is the body's first batch, already read (or the inline body); ``None``
    answers a HEAD: headers only. ``reader`` fetches the rest, if there is more.
    """

    def __init__(
        self,
        manifest: Manifest,
        headers: RawHeaders,
        reader: SegmentReader | None,
        first: list[bytes] | None,
        broken: Callable[[], Awaitable[None]] | None,
    ) -> None:
        self.status_code = manifest.status
        self.raw_headers = headers
        self.background = None
        self._reader = reader
        self._first = first
        self._broken = broken

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        if self._reader is None:  # HEAD, an inline body or an empty one: one message
            first = self._first
            body = (first[0] if len(first) == 1 else b"".join(first)) if first else b""
            await send({"type": "http.response.body", "body": body, "more_body": False})
            if self.background is not None:
                await self.background()
            return
        try:
            async for segment in self._reader.stream(self._first or []):
                await send({"type": "http.response.body", "body": segment, "more_body": True})
        except MissingSegmentError as exc:
            # Headers promised Content-Length: aborting makes the truncation visible.
            log_once(logger, "replay-broken", "replay aborted reason=%s", exc)
            if self._broken is not None:
                await self._broken()
            raise
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        await self._run_background()

    async def _run_background(self) -> None:
        if self.background is not None:  # FastAPI's, when the endpoint takes BackgroundTasks
            await self.background()
