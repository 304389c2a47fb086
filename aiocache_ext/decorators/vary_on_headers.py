"""``vary_on_headers``: one cache entry per representation, over aiocache's ``cached``."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from aiocache.base import BaseCache
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response

from .._log import log_once
from ..http.vary import merge_vary, normalize_header_value
from ..key_parts import vary_suffix
from ..keys import INJECTED_ARGS
from ._key_scope import adopt, decorator_of, key_scope
from ._signature import EndpointSignature, take, take_request

logger = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])

#: Parameters added to the endpoint's visible signature, popped before calling it.
REQUEST_PARAM, RESPONSE_PARAM = INJECTED_ARGS


def vary_on_headers(*header_names: str) -> Callable[[F], F]:
    """Keep one cache entry per normalised value of each listed request header.

    Goes directly above ``@cached(...)`` or ``@stream_cached(...)``, with any key
    builder. The request is found among the arguments, or (FastAPI) injected through
    the signature without the endpoint declaring it. Responses carry ``Vary`` listing
    the headers, on hits and misses alike.
    """
    names = tuple(dict.fromkeys(name.strip() for name in header_names if name.strip()))
    if not names:
        raise ValueError("vary_on_headers needs at least one header name, e.g. 'Accept'")

    def decorate(func: F) -> F:
        decorator = decorator_of(func)
        if decorator is None or not isinstance(getattr(func, "cache", None), BaseCache):
            raise TypeError(
                f"vary_on_headers must stand directly above @cached(...) or "
                f"@stream_cached(...); {func!r} has no aiocache cache. HINT: order the "
                f"decorators as @router.get(...), @vary_on_headers(...), @cached(...)"
            )
        adopt(decorator)
        signature = EndpointSignature(func)
        request_name, request_added = signature.parameter_for(Request, REQUEST_PARAM)
        response_name, response_added = signature.parameter_for(Response, RESPONSE_PARAM)
        lowered = tuple(n.lower() for n in names)

        @functools.wraps(func)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            request = take_request(args, kwargs, request_name, request_added)
            sub_response = take(kwargs, response_name, response_added)
            if request is None:
                log_once(
                    logger,
                    f"no-request:{id(wrapper)}",
                    "vary_on_headers skipped route=%s reason=no-request-argument",
                    func.__qualname__,
                )
                return await func(*args, **kwargs)
            with key_scope(decorator, vary_part(request, names), lowered):
                result = await func(*args, **kwargs)
            add_vary(result if isinstance(result, Response) else sub_response, names)
            return result

        wrapper.__signature__ = signature.signature()  # type: ignore[attr-defined]
        wrapper.cache = decorator.cache  # type: ignore[attr-defined]
        wrapper.aiocache_ext_decorator = decorator  # type: ignore[attr-defined]
        wrapper.aiocache_ext_varies_on = names  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate


def vary_part(request: HTTPConnection, names: Sequence[str]) -> str:
    """The key part for this request's normalised values of the headers ``names``: the
    same for ``vary_on_headers`` and for the ``Vary`` an endpoint sends itself."""
    values = [(n, normalize_header_value(n, request.headers.getlist(n))) for n in names]
    return vary_suffix(values)


def add_vary(response: Response | None, names: Sequence[str]) -> None:
    """``Vary`` on ``response`` lists ``names`` too (merged with what it says)."""
    if response is None:
        return
    merged = merge_vary(response.headers.getlist("vary"), names)
    del response.headers["vary"]
    response.headers["vary"] = merged
