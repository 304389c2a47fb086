"""A real headless Chromium driven over the DevTools protocol, for end-to-end tests.

Started with its own empty profile and the flags that keep it off the network, on a
free debugging port it picks itself (read from ``DevToolsActivePort``); ended by PID.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import websockets

FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--remote-debugging-port=0",
]  # fmt: skip


def chromium_binary() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    raise RuntimeError(
        "chromium not found: run the README's test command (scripts/test), which installs "
        "it, or install the Debian package chromium"
    )


class Page:
    """One browser tab: DevTools commands, and the events it reports."""

    def __init__(self, socket: Any) -> None:
        self._socket = socket
        self._ids = itertools.count(1)
        self._replies: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        async for raw in self._socket:
            message = json.loads(raw)
            if "id" in message:
                self._replies.pop(message["id"]).set_result(message)
            else:
                await self.events.put(message)

    async def command(self, method: str, **params: Any) -> dict[str, Any]:
        ident = next(self._ids)
        self._replies[ident] = asyncio.get_running_loop().create_future()
        await self._socket.send(json.dumps({"id": ident, "method": method, "params": params}))
        reply = await asyncio.wait_for(self._replies[ident], 30)
        assert "error" not in reply, reply
        result: dict[str, Any] = reply.get("result", {})
        return result

    async def until(self, method: str) -> dict[str, Any]:
        """The next event named ``method`` (others are dropped)."""
        while True:
            event = await asyncio.wait_for(self.events.get(), 30)
            if event["method"] == method:
                params: dict[str, Any] = event["params"]
                return params

    async def text(self) -> str:
        found = await self.command(
            "Runtime.evaluate", expression="document.body.innerText", returnByValue=True
        )
        return str(found["result"]["value"])

    async def close(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


@contextlib.asynccontextmanager
async def chromium_page() -> AsyncIterator[Page]:
    """A fresh headless Chromium and its first tab, with the Page domain enabled."""
    profile = tempfile.mkdtemp(prefix="aiocache-ext-chromium-")
    process = await asyncio.create_subprocess_exec(
        chromium_binary(), *FLAGS, f"--user-data-dir={profile}", "about:blank",
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        port_file = Path(profile) / "DevToolsActivePort"
        for _ in range(300):
            if port_file.exists() and port_file.read_text().strip():
                break
            assert process.returncode is None, "chromium exited at start"
            await asyncio.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        async with httpx.AsyncClient() as http:
            targets = (await http.get(f"http://127.0.0.1:{port}/json/list")).json()
        url = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
        async with websockets.connect(url, max_size=None) as socket:
            page = Page(socket)
            await page.command("Page.enable")
            try:
                yield page
            finally:
                await page.close()
    finally:
        process.kill()
        await asyncio.wait_for(process.wait(), 10)
        shutil.rmtree(profile, ignore_errors=True)
