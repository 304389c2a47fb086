"""Leases shared by every process on one backend: who computes a missing entry.

A lease is a key holding its owner's random token, with an expiry: taken with
``SET NX PX`` (memcached ``add``), renewed and given back only by its owner (a Lua
compare-and-set on Redis), so a leader that stalled past its lease never ends its
successor's. Waiters are woken when a lease is given back: on Redis by one ``PUBLISH``
to a channel in the namespace, received by one subscription per process and missing key
for the time of the wait (never one per waiting request, nor one that outlives it);
where there is none (memcached, a subscription refused by an ACL, a redis-py without
cluster pub/sub) they look again with a bounded backoff. A leader that dies is noticed
when its lease expires: a waiter takes it over.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import weakref
from typing import Any

from aiocache.base import BaseCache

from .._log import log_once
from .adapter import Step, as_is, backend_of
from .breaker import State
from .errors import is_outage

logger = logging.getLogger(__name__)

#: Where the waiters of a namespace are woken (a channel under the namespace's prefix,
#: so an ACL that allows the prefix's keys and channels allows it).
CHANNEL_KEY = "__aiocache_ext_flights__"
#: Backoff of a waiter that polls (seconds): first, and at most.
POLL_FIRST, POLL_MAX = 0.02, 0.25

_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
_GIVE_BACK = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  redis.call('del', KEYS[1])
  return 1
end
return 0
"""


class Leases:
    """The leases of one cache (in one namespace); ``None`` from ``leases_for`` where the
    backend is this process's own memory (the in-process single flight is all). Every
    backend call goes through ``step`` (which bounds it)."""

    def __init__(self, cache: BaseCache, namespace: str | None, step: Step = as_is) -> None:
        self.cache = cache
        self.namespace = namespace
        self.step = step
        self._expiry = backend_of(cache).expiry  # how this backend takes a ttl

    def key(self, key: str) -> Any:
        return self.cache.build_key(key, namespace=self.namespace)

    async def take(self, key: Any, ttl: float) -> str | None:
        """The lease on built ``key`` for ``ttl`` seconds: its owner token, or ``None``
        when another holds it."""
        owner = secrets.token_hex(8)
        try:
            await self.step(self.cache._add(key, owner, ttl=self._expiry(ttl)))
        except ValueError:  # aiocache's add: the key exists
            return None
        return owner

    async def renew(self, key: Any, owner: str, ttl: float) -> bool:
        """Extend an owned lease (memcached: extended whoever holds it)."""
        return bool(await self.step(self.cache._expire(key, self._expiry(ttl))))

    async def give_back(self, key: Any, owner: str) -> None:
        found = await self.step(self.cache._get(key, encoding="utf-8"))
        if found == owner:
            await self.step(self.cache._delete(key))

    async def released(self, key: Any, timeout: float) -> None:
        """Return when the lease on ``key`` may have been given back: polled with a
        bounded backoff, for at most ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        deadline, delay = loop.time() + timeout, POLL_FIRST
        while loop.time() < deadline:
            await asyncio.sleep(min(delay, max(0.0, deadline - loop.time())))
            delay = min(delay * 2, POLL_MAX)
            if await self.step(self.cache._get(key, encoding="utf-8")) is None:
                return


class RedisLeases(Leases):
    """Leases on Redis: owner-checked by Lua, waiters woken by pub/sub."""

    def __init__(self, cache: BaseCache, namespace: str | None, step: Step = as_is) -> None:
        super().__init__(cache, namespace, step)
        self.client = cache.client
        self.channel = self.key(CHANNEL_KEY)

    async def take(self, key: Any, ttl: float) -> str | None:
        owner = secrets.token_hex(8)
        taken = await self.step(self.client.set(key, owner, nx=True, px=_ms(ttl)))
        return owner if taken else None

    async def renew(self, key: Any, owner: str, ttl: float) -> bool:
        return bool(await self.step(self.client.eval(_RENEW, 1, key, owner, _ms(ttl))))

    async def give_back(self, key: Any, owner: str) -> None:
        given_back = await self.step(self.client.eval(_GIVE_BACK, 1, key, owner))
        if given_back and hasattr(self.client, "publish"):  # a redis-py 5 cluster: none
            await self.step(self.client.publish(self.channel, key))

    async def released(self, key: Any, timeout: float) -> None:
        """Subscribed to the namespace's channel for this wait (one connection per
        process and missing key, however many requests wait on it here); polled where
        there is no subscription, or already ``SUBSCRIBERS`` of them."""
        subscribers = _SUBSCRIBERS.setdefault(self.client, [0])
        if subscribers[0] >= SUBSCRIBERS:
            await super().released(key, timeout)
            return
        subscribers[0] += 1
        try:
            await self._notified(key, timeout)
        except Exception as exc:  # an ACL without the channel; no cluster pub/sub
            log_once(
                logger, f"wakeups:{type(exc).__name__}",
                "no pub/sub for single-flight waiters, polling instead error=%r", exc,
            )  # fmt: skip
            await super().released(key, timeout)
        finally:
            subscribers[0] -= 1

    async def _notified(self, key: Any, timeout: float) -> None:
        pubsub = self.client.pubsub()
        try:
            await self.step(pubsub.subscribe(self.channel))
            if not await self.step(self.client.exists(key)):
                return  # given back before we listened: no message will come
            loop = asyncio.get_running_loop()
            deadline, wanted = loop.time() + timeout, _text(key)
            while (remaining := deadline - loop.time()) > 0:
                message = await pubsub.get_message(True, timeout=remaining)
                if message is not None and _text(message.get("data")) == wanted:
                    return
        finally:
            await (pubsub.aclose() if hasattr(pubsub, "aclose") else pubsub.reset())


#: Subscriptions at once per client, at most: each holds a connection of its pool.
SUBSCRIBERS = 8
_SUBSCRIBERS: weakref.WeakKeyDictionary[Any, list[int]] = weakref.WeakKeyDictionary()


def _text(value: Any) -> str:
    return value.decode("latin-1") if isinstance(value, (bytes, bytearray)) else str(value)


class RoutedLeases(Leases):
    """``FallbackCache``: the primary's leases while it serves; while it is down, every
    process is on its own (a lease is granted at once, nobody waits on another)."""

    def __init__(self, cache: Any, namespace: str | None) -> None:
        super().__init__(cache, namespace, cache._timed)
        self.inner = leases_for(cache.primary, namespace, cache._timed)

    def _shared(self) -> Leases | None:
        return self.inner if self.cache.state is State.CLOSED else None

    async def take(self, key: Any, ttl: float) -> str | None:
        inner = self._shared()
        if inner is not None:
            try:
                return await inner.take(key, ttl)
            except Exception as exc:
                if not is_outage(exc):
                    raise
        return secrets.token_hex(8)  # on our own

    async def renew(self, key: Any, owner: str, ttl: float) -> bool:
        inner = self._shared()
        return inner is None or await inner.renew(key, owner, ttl)

    async def give_back(self, key: Any, owner: str) -> None:
        inner = self._shared()
        if inner is not None:
            await inner.give_back(key, owner)

    async def released(self, key: Any, timeout: float) -> None:
        inner = self._shared()
        if inner is not None:
            await inner.released(key, timeout)


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


def leases_for(cache: BaseCache, namespace: str | None, step: Step = as_is) -> Leases | None:
    """The leases for ``cache``'s backend; ``None`` for in-process memory."""
    backend = backend_of(cache)
    if backend.local:
        return None
    if isinstance(getattr(cache, "primary", None), BaseCache):
        return RoutedLeases(cache, namespace)
    if hasattr(cache, "client") and hasattr(cache.client, "eval"):
        return RedisLeases(cache, namespace, step)
    return Leases(cache, namespace, step)
