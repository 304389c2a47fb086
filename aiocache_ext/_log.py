"""Logging once per distinct problem, so an outage or a misconfigured route writes one
line, not one per request."""

from __future__ import annotations

import logging
import threading

_MAX_REMEMBERED = 1024
_seen: set[tuple[str, str]] = set()
_lock = threading.Lock()


def log_once(logger: logging.Logger, problem: str, message: str, *args: object) -> None:
    """Log ``message`` at WARNING the first time ``problem`` is seen by ``logger``."""
    key = (logger.name, problem)
    with _lock:
        if key in _seen:
            return
        if len(_seen) >= _MAX_REMEMBERED:
            _seen.clear()
        _seen.add(key)
    logger.warning(message, *args)
