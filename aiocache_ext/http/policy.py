"""Whether a request may be answered from / stored in a shared cache, and what the
client is told (RFC 9111 Sections 3, 4.2.3, 5.1, 5.2)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Sequence
from typing import Any

from .cache_control import CacheControl, parse_cache_control
from .vary import parse_vary

CACHEABLE_METHODS = frozenset({"GET", "HEAD"})
DEFAULT_CACHEABLE_STATUSES = frozenset({200})


@dataclasses.dataclass(frozen=True)
class SharedCacheRules:
    """A route's shared-cache rules, fixed at decoration and passed whole.

    ``statuses`` may be stored; ``allow_private``, ``allow_set_cookie`` and
    ``allow_authorized`` opt in to storing what a shared cache must not by default;
    ``honor_no_store=False`` stores although the request says ``no-store``;
    ``honor_request_cache_control`` lets a request's ``Cache-Control``/``Pragma`` bypass
    the cache (``True``, ``False``, or a callable given the request).
    """

    statuses: frozenset[int] = DEFAULT_CACHEABLE_STATUSES
    allow_private: bool = False
    allow_set_cookie: bool = False
    allow_authorized: bool = False
    honor_no_store: bool = True
    honor_request_cache_control: bool | Callable[[Any], bool] = False

    def __post_init__(self) -> None:
        honor = self.honor_request_cache_control
        if not isinstance(honor, bool) and not callable(honor):
            raise TypeError(
                "honor_request_cache_control must be True, False or a callable taking the "
                f"Request and returning a bool, not {honor!r}"
            )


DEFAULT_RULES = SharedCacheRules()


@dataclasses.dataclass(frozen=True)
class Decision:
    """A yes/no with the reason, so a skip can be logged once with its cause."""

    ok: bool
    reason: str = ""

    def __bool__(self) -> bool:
        return self.ok


YES = Decision(True)


@dataclasses.dataclass(frozen=True)
class RequestPolicy:
    """What the cache may do for one request: read an entry, write one."""

    read: Decision
    write: Decision


def request_policy(
    method: str,
    cache_control: Sequence[str] = (),
    pragma: Sequence[str] = (),
    *,
    authorization: bool = False,
    vary: Collection[str] = (),
    rules: SharedCacheRules = DEFAULT_RULES,
) -> RequestPolicy:
    """Read/write decisions for a request, from its method and caching headers.

    - only ``GET``/``HEAD`` use the cache;
    - ``Authorization`` bypasses it unless the route opts in (``allow_authorized``) or
      varies on it (RFC 9111 Section 3.5: a shared cache must not reuse such a response
      freely);
    - ``no-store`` bypasses reading and writing (``honor_no_store=False`` keeps writes);
      ``no-cache`` and ``max-age=0`` bypass reading only (RFC 9111 Section 5.2.1);
      ``Pragma: no-cache`` counts as ``no-cache`` when there is no ``Cache-Control``.
    """
    if not (cache_control or pragma or authorization) and method in CACHEABLE_METHODS:
        return _PLAIN  # the usual request: nothing to parse
    if method.upper() not in CACHEABLE_METHODS:
        no = Decision(False, f"method={method.upper()}")
        return RequestPolicy(no, no)
    if authorization and not rules.allow_authorized and "authorization" not in _lower(vary):
        no = Decision(False, "authorization")
        return RequestPolicy(no, no)
    directives = parse_cache_control(cache_control) if cache_control else None
    if directives is None and "no-cache" in parse_vary(pragma):  # same list syntax
        directives = CacheControl(no_cache=True)
    if directives is None:
        return RequestPolicy(YES, YES)
    write = YES
    if directives.no_store:
        read = Decision(False, "request no-store")
        if rules.honor_no_store:
            write = read
    elif directives.no_cache:
        read = Decision(False, "request no-cache")
    elif directives.max_age == 0:
        read = Decision(False, "request max-age=0")
    else:
        read = YES
    return RequestPolicy(read, write)


_PLAIN = RequestPolicy(YES, YES)


def response_storable(
    status: int,
    cache_control: Sequence[str] = (),
    vary: Sequence[str] = (),
    *,
    set_cookie: bool = False,
    rules: SharedCacheRules = DEFAULT_RULES,
) -> Decision:
    """Whether a response may be stored in a cache shared by every user of the route."""
    if status not in rules.statuses:
        return Decision(False, f"status={status}")
    directives = parse_cache_control(cache_control)
    if directives.no_store:
        return Decision(False, "response no-store")
    if directives.private and not rules.allow_private:
        return Decision(False, "response private")
    if directives.no_cache:  # must be revalidated with the origin on every use
        return Decision(False, "response no-cache")
    if directives.shared_lifetime == 0:
        return Decision(False, "response max-age=0")
    if set_cookie and not rules.allow_set_cookie:
        return Decision(False, "set-cookie")
    if "*" in parse_vary(vary):
        return Decision(False, "vary *")
    return YES


def age(stored_at: float, now: float) -> int:
    """Whole seconds since the entry was stored, for the ``Age`` header (RFC 9111 5.1)."""
    return max(0, int(now - stored_at))


def client_cache_control(
    endpoint_value: str | None, remaining_ttl: float | None, *, client_max_age: bool = False
) -> str | None:
    """The ``Cache-Control`` to send; ``None`` keeps the endpoint's own.

    By default clients get ``no-cache``: they may keep a copy but revalidate each time,
    so the server-side cache stays the one that decides (and an ``ETag`` makes that a
    cheap ``304``). With ``client_max_age``, clients may reuse the response for the
    entry's remaining lifetime.
    """
    if endpoint_value is not None:
        return None
    if client_max_age and remaining_ttl is not None and remaining_ttl >= 1:
        return f"max-age={int(remaining_ttl)}"
    return "no-cache"


def _lower(names: Collection[str]) -> set[str]:
    return {name.lower() for name in names}
