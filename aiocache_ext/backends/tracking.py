"""The invalidation link of ``NearCache``: Redis server-assisted client-side caching in
broadcasting mode, over one connection of its own per cache (per primary on a cluster).

The connection speaks RESP2 whatever the cache's data connections speak (redis-py 8
defaults to RESP3, whose invalidations arrive as push messages on the data connections
themselves, where a pooled async client never reads them): it asks for its own client
id, turns tracking on redirected to itself (``CLIENT TRACKING ON REDIRECT <id> BCAST
PREFIX <prefix>...``), and subscribes to ``__redis__:invalidate``. Redis then announces
every key written, deleted, expired or evicted under those prefixes, whoever changed
it; a ``FLUSHALL``/``FLUSHDB`` is announced as a flush. Works on Redis 6+ and Valkey.

The link is ``ready`` only while it is known to be alive: it pings after every quiet
``ping_interval`` and gives up when the pong does not come within one more. Whenever it
is lost or in doubt, ``ready`` turns false and ``on_flush`` is called (the near tier
forgets everything, reads under way included), and the link reconnects with backoff;
it is ``ready`` again once tracking is on, after one more flush.

On a Redis Cluster every primary announces the keys it holds: ``ClusterLinks`` keeps one
link per primary the client knows, follows its map (a replica promoted, a node added)
and is ``ready`` only while every current primary's link is.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any

from .._log import log_once

logger = logging.getLogger(__name__)

CHANNEL = b"__redis__:invalidate"
#: Reconnection backoff (seconds): first, and at most.
RETRY_FIRST, RETRY_MAX = 0.05, 2.0


class InvalidationLink:
    """Tracking for ``prefixes`` (none: every key) of the server behind ``source``: a
    redis-py connection pool or cluster node (both say how they connect)."""

    def __init__(
        self,
        source: Any,
        prefixes: Sequence[str],
        on_invalidate: Callable[[list[bytes]], None],
        on_flush: Callable[[], None],
        ping_interval: float = 1.0,
    ) -> None:
        self.source = source
        self.prefixes = list(prefixes)
        self.on_invalidate = on_invalidate
        self.on_flush = on_flush
        self.ping_interval = ping_interval
        self.ready = False
        self._task: asyncio.Task[None] | None = None
        self._connection: Any = None

    def start(self) -> None:
        """Run the link in the background (once; again after ``stop``)."""
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        self._lost()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait([task])
        await self._close()

    async def _run(self) -> None:
        delay = RETRY_FIRST
        while True:
            try:
                await self._connect()
                delay = RETRY_FIRST
                await self._listen()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log_once(
                    logger, f"link:{type(exc).__name__}",
                    "near cache invalidation link lost, near tier bypassed error=%r", exc,
                )  # fmt: skip
            self._lost()
            await self._close()
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX)

    async def _connect(self) -> None:
        connection = self._connection = tracking_connection(self.source)
        await connection.connect()
        client_id = await self._call("CLIENT", "ID")
        prefixes = [part for prefix in self.prefixes for part in ("PREFIX", prefix)]
        await self._call("CLIENT", "TRACKING", "ON", "REDIRECT", client_id, "BCAST", *prefixes)
        await self._call("SUBSCRIBE", CHANNEL)
        # Anything read before now may have changed unannounced: start from nothing.
        self.on_flush()
        self.ready = True

    async def _call(self, *command: Any) -> Any:
        connection = self._connection
        await connection.send_command(*command)
        reply = await connection.read_response(timeout=self.ping_interval * 2)
        if reply is None:
            raise TimeoutError(f"no reply to {command[0]} {command[1]}")
        if isinstance(reply, Exception):
            raise reply
        return reply

    async def _listen(self) -> None:
        connection, pinged = self._connection, False
        while True:
            message = await connection.read_response(timeout=self.ping_interval)
            if message is None:  # quiet: is it alive?
                if pinged:
                    raise TimeoutError(f"no pong in {self.ping_interval}s")
                await connection.send_command("PING")
                pinged = True
                continue
            pinged = False
            if isinstance(message, list) and len(message) == 3 and message[0] == b"message":
                keys = message[2]
                if keys is None:  # FLUSHALL / FLUSHDB
                    self.on_flush()
                else:
                    self.on_invalidate(list(keys))

    def _lost(self) -> None:
        self.ready = False
        self.on_flush()

    async def _close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                await connection.disconnect()
            except Exception as exc:  # closing a broken connection: nothing to keep
                log_once(logger, "link-close", "near cache link not closed cleanly error=%r", exc)


def tracking_connection(source: Any) -> Any:
    """A new connection, speaking RESP2, to the server behind ``source`` (a pool or a
    cluster node), with its options: TLS, credentials, unix socket, timeouts."""
    kwargs = {
        k: v
        for k, v in source.connection_kwargs.items()
        # redis-py 8's maintenance notifications need RESP3; a cluster's connect hook
        # (READONLY for replica reads) is for data connections.
        if not k.startswith("maint_") and k != "redis_connect_func"
    }
    kwargs.update(protocol=2, decode_responses=False)
    return source.connection_class(**kwargs)


class ClusterLinks:
    """One ``InvalidationLink`` per primary of a Redis Cluster ``client``, following its
    map: checked every ``ping_interval``, a primary gone loses its link and a new one
    gets one, and the tier is emptied on every change. ``ready`` while every current
    primary's link is."""

    def __init__(
        self,
        client: Any,
        prefixes: Sequence[str],
        on_invalidate: Callable[[list[bytes]], None],
        on_flush: Callable[[], None],
        ping_interval: float = 1.0,
    ) -> None:
        self.client = client
        self.prefixes = list(prefixes)
        self.on_invalidate = on_invalidate
        self.on_flush = on_flush
        self.ping_interval = ping_interval
        self.links: dict[str, InvalidationLink] = {}
        self._task: asyncio.Task[None] | None = None

    @property
    def ready(self) -> bool:
        links = self.links.values()
        return bool(links) and all(link.ready for link in links)

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._follow()
            self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait([task])
        links, self.links = list(self.links.values()), {}
        for link in links:
            await link.stop()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.ping_interval)
            for link in self._follow():
                await link.stop()

    def _follow(self) -> list[InvalidationLink]:
        """Links for the primaries the client knows now; those no longer needed."""
        primaries = {node.name: node for node in self.client.get_primaries()}
        if primaries.keys() == self.links.keys():
            return []
        self.on_flush()  # a changed map: what was read may have moved unannounced
        gone = [link for name, link in self.links.items() if name not in primaries]
        self.links = {
            name: self.links.get(name)
            or InvalidationLink(
                node, self.prefixes, self.on_invalidate, self.on_flush, self.ping_interval
            )
            for name, node in primaries.items()
        }
        for link in self.links.values():
            link.start()
        return gone
