"""Which errors mean that a backend cannot be reached (an outage), and which are answers."""

from __future__ import annotations

import asyncio

#: What a primary raises when it is down, hung or unreachable (not when it refuses an
#: operation: a ``ValueError`` from ``add`` on an existing key is an answer, not an outage).
OUTAGE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    EOFError,
    asyncio.TimeoutError,
    asyncio.IncompleteReadError,
)
#: Errors of those families that are answers, not outages: a full redis-py pool is a
#: burst on a healthy server (``Guard`` queues calls so it should not happen at all).
NOT_OUTAGES: tuple[type[BaseException], ...] = ()
try:
    import redis.exceptions as _redis_errors

    OUTAGE_ERRORS += (_redis_errors.ConnectionError, _redis_errors.TimeoutError)
    # A Redis Cluster that lost a primary: CLUSTERDOWN (MASTERDOWN) and TRYAGAIN replies
    # until a replica is promoted, or a slot no known node serves.
    OUTAGE_ERRORS += (_redis_errors.ClusterDownError, _redis_errors.TryAgainError)
    OUTAGE_ERRORS += (_redis_errors.SlotNotCoveredError,)
    if hasattr(_redis_errors, "MaxConnectionsError"):  # redis-py 6+
        NOT_OUTAGES += (_redis_errors.MaxConnectionsError,)
except ImportError:  # pragma: no cover - the redis extra is not installed
    pass
try:
    from aiomcache.exceptions import ClientException as _McError
    from aiomcache.exceptions import ValidationException as _McRefused
except ImportError:  # pragma: no cover - the memcached extra is not installed
    _McError = _McRefused = ()  # type: ignore[assignment,misc]


def is_outage(error: BaseException) -> bool:
    """Whether ``error`` means the primary cannot be reached (not a wrong answer)."""
    if NOT_OUTAGES and isinstance(error, NOT_OUTAGES):
        return False
    if isinstance(error, OUTAGE_ERRORS):
        return True
    # aiomcache reads an empty line from a connection the server closed, and reports it
    # as "<command> failed: b''" (on Python 3.12+ instead of IncompleteReadError).
    return (
        isinstance(error, _McError)
        and not isinstance(error, _McRefused)
        and str(error).endswith(": b''")
    )
