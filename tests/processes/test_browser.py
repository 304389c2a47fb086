"""A cached streamed page behind GZipMiddleware, loaded, reloaded and hard-reloaded by a
real headless Chromium: what the page shows, and what the server answered."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiocache.base import BaseCache
from fastapi import FastAPI
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aiocache_ext import stream_cached

from ..helpers import served
from .browser import chromium_page

ITEMS = 300


class Exchanges:
    """Outermost ASGI middleware: each request's caching headers and the status sent."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.seen: list[dict[str, Any]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != "/page":
            await self.app(scope, receive, send)
            return
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        seen = {"cache-control": headers.get("cache-control"),
                "if-none-match": headers.get("if-none-match")}  # fmt: skip
        self.seen.append(seen)

        async def record(message: Message) -> None:
            if message["type"] == "http.response.start":
                sent = {k.decode().lower(): v.decode() for k, v in message["headers"]}
                seen.update(status=message["status"], x_cache=sent.get("x-cache"),
                            encoding=sent.get("content-encoding"))  # fmt: skip
            await send(message)

        await self.app(scope, receive, record)


@pytest.mark.timeout(180)
async def test_load_reload_and_hard_reload_in_chromium(cache: BaseCache) -> None:
    calls = 0
    app = FastAPI()
    app.add_middleware(GZipMiddleware, minimum_size=500)

    @app.get("/page")
    @stream_cached(cache=cache, ttl=600)
    async def page(request: Request) -> StreamingResponse:
        nonlocal calls
        calls += 1

        async def html() -> AsyncIterator[bytes]:
            yield b"<!doctype html><html><body><h1>Report</h1><ul>"
            for i in range(ITEMS):
                yield f"<li>line {i}</li>".encode()
            yield b"</ul></body></html>"

        return StreamingResponse(html(), media_type="text/html; charset=utf-8")

    exchanges = Exchanges(app)
    async with served(exchanges) as client, chromium_page() as tab:
        url = str(client.base_url.join("/page"))
        texts = []
        for action in ("load", "reload", "reload", "hard reload"):
            if action == "load":
                await tab.command("Page.navigate", url=url)
            else:
                await tab.command("Page.reload", ignoreCache=action == "hard reload")
            await tab.until("Page.loadEventFired")
            texts.append(await tab.text())

    assert all(text.startswith("Report") and f"line {ITEMS - 1}" in text for text in texts)
    assert len(set(texts)) == 1
    answered = [(s["status"], s["x_cache"]) for s in exchanges.seen]
    # load: a miss; reload: the browser has no validator yet (a streamed miss cannot
    # know its ETag), so a full hit; reload again: 304 (from the cache: marked HIT too);
    # hard reload (no-cache): a hit.
    assert answered == [(200, "MISS"), (200, "HIT"), (304, "HIT"), (200, "HIT")]
    assert exchanges.seen[2]["if-none-match"] is not None
    assert exchanges.seen[3]["cache-control"] == "no-cache"
    assert all(s["encoding"] == "gzip" for s in exchanges.seen if s["status"] == 200)
    assert calls == 1
