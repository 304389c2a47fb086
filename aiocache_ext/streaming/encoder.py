"""Compresses a response once, on its way into the cache, so that a hit is sent already
compressed (``GZipMiddleware`` passes a response that has ``Content-Encoding`` through
untouched) instead of being compressed again on every request.

It wraps the ASGI ``send`` the way ``GZipMiddleware`` does: the start message is held
until the first body message shows whether compressing is worth it (not for a whole
body under ``min_size``, a partial response, streamed events, gRPC, or a response that
is already encoded). Output is deterministic (gzip header without a time stamp), so the
entry's ETag is the same in every process.
"""

from __future__ import annotations

import zlib
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.types import Message, Send

from ..http.encoding import compressible


class GzipEncoder:
    """An ASGI ``send`` that gzips the body (``compress=True``) or only marks that the
    representation depends on ``Accept-Encoding`` (``compress=False``)."""

    def __init__(self, send: Send, *, compress: bool, level: int, min_size: int) -> None:
        self._send = send
        self._compress = compress
        self._level = level
        self._min_size = min_size
        self._start: Message | None = None
        self._compressor: Any = None  # zlib's compressobj, once compressing

    async def __call__(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            self._start = {**message, "headers": list(message.get("headers", []))}
            return
        if kind == "http.response.body" and self._start is not None:
            start, self._start = self._start, None
            await self._begin(start, message)
            return
        if kind == "http.response.body" and self._compressor is not None:
            message = self._compressed(message)
        await self._send(message)

    async def _begin(self, start: Message, first: Message) -> None:
        headers = MutableHeaders(raw=start["headers"])
        body, more_body = first.get("body", b""), first.get("more_body", False)
        eligible = (
            "content-encoding" not in headers
            and start["status"] != 206
            and compressible(headers.get("content-type", ""))
        )
        if eligible:
            headers.add_vary_header("Accept-Encoding")
        if eligible and self._compress and (more_body or len(body) >= self._min_size):
            self._compressor = zlib.compressobj(self._level, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
            headers["Content-Encoding"] = "gzip"
            first = self._compressed(first)
            if more_body:
                del headers["Content-Length"]
            else:
                headers["Content-Length"] = str(len(first["body"]))
        await self._send(start)
        await self._send(first)

    def _compressed(self, message: Message) -> Message:
        body = self._compressor.compress(bytes(message.get("body", b"")))
        more_body = message.get("more_body", False)
        if not more_body:
            body += self._compressor.flush()
        return {"type": "http.response.body", "body": body, "more_body": more_body}
