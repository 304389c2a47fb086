"""Time to live: what users may write, checked once at decoration time. Pure.

``90``, ``1.5``, ``timedelta(minutes=5)``, ``"90s"``, ``"5m"``, ``"1h30m"``, ``"2d"``,
``"1w"``, or a plain number as a string (config dicts give strings); ``None``: no expiry.
Named constants for the usual lives: ``ttl=ONE_HOUR``.
"""

from __future__ import annotations

import datetime
import math
import re
import time
from typing import Union

TTL = Union[int, float, datetime.timedelta, str, None]

ONE_SECOND = 1
ONE_MINUTE = 60
ONE_HOUR = 60 * ONE_MINUTE
ONE_DAY = 24 * ONE_HOUR
ONE_WEEK = 7 * ONE_DAY
ONE_MONTH = 30 * ONE_DAY
ONE_YEAR = 365 * ONE_DAY

_UNITS = {"ms": 0.001, "s": 1, "m": ONE_MINUTE, "h": ONE_HOUR, "d": ONE_DAY, "w": ONE_WEEK}
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)", re.IGNORECASE)
_WHOLE = re.compile(r"(?:\s*\d+(?:\.\d+)?\s*(?:ms|s|m|h|d|w)\s*)+", re.IGNORECASE)

#: memcached reads an expiry over 30 days as a Unix time stamp.
MEMCACHED_RELATIVE_MAX = 30 * ONE_DAY


def parse_ttl(value: object, name: str = "ttl") -> int | float | None:
    """Seconds (an ``int`` when whole, so every backend takes it), or ``None``.

    Raises ``TypeError``/``ValueError`` naming ``name`` and the accepted forms.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise TypeError(_explain(name, value))
    if isinstance(value, datetime.timedelta):
        seconds: float = value.total_seconds()
    elif isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        seconds = _parse_text(value, name)
    else:
        raise TypeError(_explain(name, value))
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"{name} must be positive, got {value!r}; use None for no expiry")
    return int(seconds) if seconds == int(seconds) else seconds


def _parse_text(text: str, name: str) -> float:
    stripped = text.strip()
    try:
        return float(stripped)
    except ValueError:
        pass
    if not _WHOLE.fullmatch(stripped):
        raise ValueError(_explain(name, text))
    return sum(float(n) * _UNITS[unit.lower()] for n, unit in _PART.findall(stripped))


def _explain(name: str, value: object) -> str:
    return (
        f"{name} must be seconds (int or float), a datetime.timedelta, or a string such as "
        f"'90s', '5m', '1h30m', '2d' (None: no expiry), got {value!r}"
    )


def memcached_expiry(ttl: float | None) -> int:
    """memcached's ``exptime`` for a ttl: whole seconds rounded up, 0 for none, and a
    Unix time stamp past 30 days (memcached's rule for larger values)."""
    if ttl is None:
        return 0
    seconds = math.ceil(ttl)
    return seconds if seconds <= MEMCACHED_RELATIVE_MAX else int(time.time()) + seconds


def parse_window(value: object, name: str) -> float:
    """A stale window (``stale_while_revalidate``, ``stale_if_error``): any ttl form, or
    ``0``/``None`` for none."""
    if value is None or value == 0:
        return 0.0
    return float(parse_ttl(value, name) or 0)
