"""Invalidating whole namespaces, and dropping keys, without blocking Redis.

Every namespace has a token (a random value under ``TOKEN_KEY``) that each stored stream
entry records when its write starts; an entry is served only while the token is the
same. ``invalidate_namespace`` sets a new token: one write, O(1) on every backend, and a
write that started before it can never become visible after it. Where the backend can
list keys, the namespace's keys are also dropped, which frees memory and drops values
of plain ``cached`` too: Redis ``SCAN MATCH <prefix>*`` + ``UNLINK`` in batches, never
``KEYS`` (one call walks the whole keyspace while the server serves nobody) nor
``FLUSHDB`` (it wipes other users' data); in-process memory: the matching dict keys.
memcached cannot list keys, and is never flushed: there, the token is all.
"""

from __future__ import annotations

import logging
import secrets

from aiocache.base import BaseCache

from .._log import log_once
from .adapter import Step, as_is, backend_of

logger = logging.getLogger(__name__)

#: The key, in each namespace, that holds its token.
TOKEN_KEY = "__aiocache_ext_token__"


def new_token() -> str:
    return secrets.token_hex(8)


async def invalidate_namespace(cache: BaseCache, namespace: str, step: Step = as_is) -> int:
    """Make every stream entry of ``namespace`` a miss from now on, and drop its keys where
    the backend can list them; returns how many keys went (-1: it cannot list keys)."""
    prefix = cache.build_key("", namespace=namespace)
    dropped = await backend_of(cache).delete_prefix(prefix, step)
    await step(cache._set(cache.build_key(TOKEN_KEY, namespace=namespace), new_token()))
    if dropped < 0:
        log_once(
            logger, f"unlisted:{type(cache).__name__}",
            "namespace invalidated by its token only backend=%s namespace=%s reason=it "
            "cannot list keys: plain cached values stay until their ttl",
            type(cache).__name__, namespace,
        )  # fmt: skip
    return dropped
