"""``stream_cached``: aiocache's ``cached`` for routes, ``StreamingResponse`` included."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Collection
from typing import Any, NamedTuple, TypeVar

from aiocache import Cache, cached
from aiocache.base import SENTINEL
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Scope

from .. import events
from .._log import log_once
from ..backends.leases import leases_for
from ..exceptions import SerializerError
from ..http.cache_status import HIT, Outcome, check_name, forwarded_because
from ..http.encoding import accepts
from ..http.policy import RequestPolicy, SharedCacheRules, request_policy
from ..http.request_headers import RequestHeaders, read_request_headers
from ..http.staleness import Freshness, StaleRules, freshness
from ..key_parts import origin_suffix
from ..keys import key_builder as default_keys
from ..streaming.encoder import GzipEncoder
from ..streaming.format import Manifest, StaleValue, VaryIndex
from ..streaming.hot import HotHits
from ..streaming.integrity import Integrity
from ..streaming.reader import DEFAULT_BATCH
from ..streaming.replay import (
    ReplayOptions,
    hit_headers_until,
    hit_marks,
    miss_headers,
    miss_status,
    ready_hit,
    replay,
)
from ..streaming.responses import RawHeaders, StoringResponse, storable_check
from ..streaming.store import Held, SegmentStore
from ..streaming.writer import StreamWriter
from ..ttl import parse_ttl, parse_window
from ._key_scope import varied_headers
from ._resolve import resolve_cache
from ._signature import EndpointSignature, take, take_request
from ._single_flight import End, Flights, both, claim, ended, not_leading, spawn, take_turn
from .vary_on_headers import REQUEST_PARAM, RESPONSE_PARAM, add_vary, vary_part

logger = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])

KiB, MiB = 1024, 1024 * 1024


class stream_cached(cached):  # type: ignore[misc]
    """Cache a route's response, streamed or not, and replay it with HTTP semantics.

    Takes every argument of ``aiocache.cached`` (and a ready cache instance as ``cache``);
    the default ``key_builder`` is ``aiocache_ext.key_builder``, which leaves the request
    out of the key.
    A ``Response`` the endpoint returns is sent as it is produced and stored on the way;
    the entry becomes visible only once the whole body is stored. Other return values
    behave exactly as under ``cached``. Options:

    - ``segment_size``: body bytes per stored item (default 256 KiB, well under
      memcached's 1 MB); ``max_size``: bodies past it are sent but not stored;
    - ``header_name``: ``X-Cache: HIT|MISS`` (``None`` to leave it out);
    - ``cache_status``: this cache's name in an RFC 9211 ``Cache-Status`` header
      (``api; hit; ttl=42``, ``api; fwd=miss; stored``, ``api; fwd=request``, ...);
      ``None`` (the default) leaves it out;
    - ``statuses``, ``allow_private``, ``allow_set_cookie``, ``allow_authorized``,
      ``honor_no_store``: the shared-cache rules of ``aiocache_ext.http.policy``;
    - ``honor_request_cache_control``: whether a request's ``Cache-Control``/``Pragma``
      may bypass the cache (``False``, the default: any client could otherwise force
      origin work; a callable decides per request, e.g. for trusted internal clients);
    - ``key_host``: key entries by the request's scheme, host and root path (default), so
      absolute URLs built for one ``Host`` are never served to another host's visitors;
    - ``compress``: store a gzip-compressed representation for requests that accept
      gzip (and the plain one for the others), so hits are not compressed again on every
      request by ``GZipMiddleware``; ``compress_level``, ``compress_min_size`` as there;
    - ``secret``: authenticate entries (HMAC-SHA256) so that records written by anyone
      without it are never served; taken from the cache's ``CompressionSerializer``
      when it has one;
    - ``client_max_age``: tell clients ``max-age=<remaining ttl>`` instead of ``no-cache``;
    - ``single_flight``: concurrent misses of one key make one endpoint call: across
      every process sharing the backend (``"shared"``, the default; a lease on the
      backend, waiters woken when the entry is stored), in this process only
      (``"process"``; also what ``"shared"`` is on in-process memory), or not at all
      (``"off"``);
    - ``lock_timeout``: how long concurrent misses wait for the first one (seconds);
    - ``stale_while_revalidate``: for this long past its ttl an entry is still served
      at once (``X-Cache: STALE``, its true ``Age``) while one request, across every
      process, refreshes it; ``stale_if_error``: for this long past its ttl an entry is
      served when the endpoint raises or answers 5xx. Both any ttl form; the endpoint's
      own ``Cache-Control: stale-while-revalidate=N, stale-if-error=N`` wins for its
      response, and ``must-revalidate`` turns both off (RFC 5861, RFC 9111). Plain
      values (a call outside a request, a route returning a ``dict``) follow the same
      rules, and their concurrent misses make one call too;
    - ``read_batch``: segments per backend read; ``inline_size``: bodies up to this size
      are kept in the manifest itself, so their hits take one backend read.
    """

    def __init__(
        self,
        ttl: Any = SENTINEL,
        key: str | None = None,
        namespace: str | None = None,
        key_builder: Callable[..., str] | None = None,
        skip_cache_func: Callable[[Any], bool] = lambda x: False,
        cache: Any = Cache.MEMORY,
        serializer: Any = None,
        plugins: Any = None,
        alias: str | None = None,
        noself: bool = False,
        *,
        segment_size: int = 256 * KiB,
        max_size: int = 256 * MiB,
        header_name: str | None = "X-Cache",
        cache_status: str | None = None,
        statuses: Collection[int] = (200,),
        allow_private: bool = False,
        allow_set_cookie: bool = False,
        allow_authorized: bool = False,
        honor_no_store: bool = True,
        honor_request_cache_control: bool | Callable[[Request], bool] = False,
        key_host: bool = True,
        secret: str | bytes | None = None,
        compress: bool = False,
        compress_level: int = 6,
        compress_min_size: int = 500,
        client_max_age: bool = False,
        single_flight: str = "shared",
        lock_timeout: float = 30.0,
        stale_while_revalidate: Any = 0,
        stale_if_error: Any = 0,
        read_batch: int = DEFAULT_BATCH,
        inline_size: int = 16 * KiB,
        **kwargs: Any,
    ) -> None:
        # A route always has a Request among its arguments: aiocache's default key would
        # hold its repr (a new key per request, never a hit), so ours is the default.
        if ttl is not SENTINEL:
            ttl = parse_ttl(ttl)  # at decoration: a bad ttl never reaches a request
        super().__init__(
            ttl=ttl, key=key, namespace=namespace, key_builder=key_builder or default_keys,
            skip_cache_func=skip_cache_func, cache=cache, serializer=serializer,
            plugins=plugins, alias=alias, noself=noself, **kwargs,
        )  # fmt: skip
        if segment_size <= 0 or max_size < 0:
            raise ValueError("segment_size must be positive and max_size not negative")
        if not 0 <= compress_level <= 9:
            raise ValueError(f"compress_level must be 0..9 (zlib levels), not {compress_level}")
        self.segment_size = int(segment_size)
        self.max_size = int(max_size)
        self.inline_size = min(int(inline_size), self.segment_size)
        self.rules = SharedCacheRules(
            frozenset(statuses), allow_private, allow_set_cookie, allow_authorized,
            honor_no_store, honor_request_cache_control,
        )  # fmt: skip
        self.key_host = key_host
        self._secret = secret.encode() if isinstance(secret, str) else secret
        self.compress = compress
        self._encoder = functools.partial(
            GzipEncoder, level=compress_level, min_size=compress_min_size
        )
        marker = header_name.lower().encode("latin-1") if header_name else None
        status_name = None if cache_status is None else check_name(cache_status)
        self.replay_options = ReplayOptions(marker, client_max_age, read_batch, status_name)
        self._storable = storable_check(self.rules)
        if single_flight not in ("shared", "process", "off"):
            raise ValueError(
                f"single_flight must be 'shared', 'process' or 'off', not {single_flight!r}"
            )
        self.single_flight = single_flight
        self._flights = Flights(lock_timeout)
        self.stale = StaleRules(
            parse_window(stale_while_revalidate, "stale_while_revalidate"),
            parse_window(stale_if_error, "stale_if_error"),
        )
        self._request_param = (REQUEST_PARAM, True)
        self._response_param = (RESPONSE_PARAM, True)
        self._events: dict[tuple[int, str, str | None], tuple[Any, events.Event]] = {}

    def __call__(self, f: F) -> F:
        varied = getattr(f, "aiocache_ext_varies_on", None)
        if varied is not None:  # this entry would not vary: one variant for everyone
            raise TypeError(
                f"@stream_cached(...) stands above @vary_on_headers{varied!r} on "
                f"{getattr(f, '__qualname__', f)!r}, so its entries would not vary. HINT: "
                "order the decorators as @router.get(...), @vary_on_headers(...), "
                "@stream_cached(...)"
            )
        self.cache = resolve_cache(
            self._cache, self.alias, serializer=self._serializer, namespace=self._namespace,
            plugins=self._plugins, **self._kwargs,
        )  # fmt: skip
        # A ready instance keeps its own namespace unless this decorator names one.
        namespace = self._namespace if self.cache is self._cache else None
        serializer_secret = getattr(self.cache.serializer, "secret", None)
        integrity = Integrity(self._secret or serializer_secret)
        # With a secret, a plain value is trusted only from a serializer that signs it.
        self._plain_values = integrity.secret is None or serializer_secret is not None
        self._store = SegmentStore(self.cache, integrity, namespace)
        self._hot = HotHits(self._store.backend)
        shared = self.single_flight == "shared"
        lease_step = functools.partial(self._store.timed, op="lease")
        self._leases = leases_for(self.cache, namespace, lease_step) if shared else None
        ttl = self.cache.ttl if self.ttl is SENTINEL else self.ttl
        self._entry_ttl = None if ttl is None else parse_ttl(ttl)  # once, not per request
        signature = EndpointSignature(f)
        self._request_param = signature.parameter_for(Request, REQUEST_PARAM)
        self._response_param = signature.parameter_for(Response, RESPONSE_PARAM)

        @functools.wraps(f)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            return await self.decorator(f, *args, **kwargs)

        wrapper.cache = self.cache  # type: ignore[attr-defined]
        wrapper.aiocache_ext_decorator = self  # type: ignore[attr-defined]
        wrapper.__signature__ = signature.signature()  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]  # called as ``f`` is

    async def decorator(
        self,
        f: Callable[..., Any],
        *args: Any,
        cache_read: bool = True,
        cache_write: bool = True,
        aiocache_wait_for_write: bool = True,
        **kwargs: Any,
    ) -> Any:
        """Policy, then a fresh hit this process holds, at once; else ``_serve``."""
        request = take_request(args, kwargs, *self._request_param)
        sub_response = take(kwargs, *self._response_param)  # FastAPI's, for plain values
        if not isinstance(request, Request):  # a plain function call: a plain value
            return await self._call(
                f, args, kwargs, cache_read, cache_write, aiocache_wait_for_write
            )

        method, headers = request.scope["method"], read_request_headers(request.scope["headers"])
        policy = self._policy(request, method, headers)
        gzip = self.compress and accepts("gzip", headers.accept_encoding)
        key = self._key(f, args, kwargs, request, headers, gzip)
        read = cache_read and policy.read.ok
        held = None
        if read:
            found, held = self._held(key, method, headers)
            if found is not None:
                return self._told(sub_response, request, found, "hit", HIT)
        write = cache_write and policy.write.ok and method == "GET"
        asked = _Asked(request, sub_response, headers, policy, key, gzip, read, write, held)
        return await self._serve(f, args, kwargs, asked)

    async def _serve(
        self, f: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], asked: _Asked
    ) -> Any:
        """Lookup, lead or follow a concurrent miss, call, store."""
        request, sub_response, headers, policy, key, gzip, read, write, held = asked
        token, stale, hit = None, None, "hit"
        if read:
            found, token, stale = await self._lookup(key, request, headers, held)
            if (
                found is None
                and not _revalidating(stale)
                and write
                and await self._flights.wait(key)
            ):
                found, token, stale = await self._lookup(key, request, headers)
                hit = "coalesced"  # found after waiting for a concurrent miss
            if found is not None:
                return self._told(sub_response, request, found, hit, HIT)
            if stale is not None and stale.freshness is Freshness.REVALIDATE:
                served = await self._stale_response(stale, key, request, headers)
                if served is not None:
                    if write:
                        call = functools.partial(f, *args, **kwargs)
                        self._refresh_later(served, call, key, request, gzip)
                    return self._told(sub_response, request, served, "stale", HIT, "revalidate")

        flight = write and self.single_flight != "off"
        end_flight = self._flights.lead(key) if flight else _no_flight
        try:
            # A miss (not a refresh that skipped the read): this process's turn among all.
            if self._leases is not None and read and flight and end_flight is not not_leading:
                look = functools.partial(self._look, key, request, headers)
                timeout = self._flights.timeout
                found, token, lease = await take_turn(self._leases, key, timeout, look)
                if found is not None:  # another process stored it meanwhile
                    return self._told(sub_response, request, found, "coalesced", HIT)
                if lease is not None:
                    end_flight = both(end_flight, lease.end)
            if write and token is None:  # a new namespace, or the read was skipped or failed
                token = await self._token()
                if token is None:
                    write = False
                    await ended(end_flight)  # nothing will be stored: waiters need not wait
            try:
                result = await f(*args, **kwargs)
            except Exception as exc:
                served = await self._instead_of_error(stale, key, request, headers, exc)
                if served is None:
                    raise
                return self._told(sub_response, request, served, "stale", Outcome("stale"), "error")
            why = Outcome("miss") if policy.read.ok else forwarded_because(policy.read.reason)
            if not isinstance(result, Response):
                stored = write and not self.skip_cache_func(result)
                if stored:
                    await self._store_value(f, key, result)
                return self._told(
                    sub_response,
                    request,
                    result,
                    *_forwarded(dataclasses.replace(why, stored=stored)),
                )
            if result.status_code >= 500 and stale is not None:
                status = result.status_code
                served = await self._instead_of_error(stale, key, request, headers, status)
                if served is not None:
                    return self._told(
                        sub_response,
                        request,
                        served,
                        "stale",
                        Outcome("stale", fwd_status=status),
                        "error",
                    )
            if not write:
                extra = miss_headers(result, self._entry_ttl, self.replay_options, why)
                result.raw_headers.extend(extra)
                return self._told(sub_response, request, result, *_forwarded(why))
            extra = miss_headers(result, self._entry_ttl, self.replay_options, None)
            storing = self._storing(result, key, request, token, gzip, end_flight, extra, why)
            end_flight = _no_flight  # the response ends it once its entry is stored or not
            return storing
        finally:
            await ended(end_flight)

    def _told(
        self,
        sub_response: Response | None,
        request: Request,
        result: Any,
        kind: str,
        how: Outcome,
        reason: str | None = None,
    ) -> Any:
        """``result``, told: the request's outcome ``kind`` (``reason``) to the event
        listeners; a plain value's marker and ``Cache-Status`` (``how``) on FastAPI's
        sub-response, whose headers FastAPI adds to the response it builds (a
        ``Response`` carries its own)."""
        self._tell(request.scope, kind, reason)
        if sub_response is None or isinstance(result, Response):
            return result
        options = self.replay_options
        if options.marker:
            sub_response.raw_headers.append((options.marker, _MARKS.get(kind, b"MISS")))
        if options.cache_status is not None:
            sub_response.raw_headers.append((b"cache-status", how.header(options.cache_status)))
        return result

    def _tell(self, scope: Scope, kind: str, reason: str | None = None) -> None:
        """A request's outcome ``kind`` (``reason``) to the event listeners, if any."""
        if events.listening():
            events.tell(self._event(scope, kind, reason))

    def _event(self, scope: Scope, kind: str, reason: str | None) -> events.Event:
        """The event of a request's outcome on its route, built once per route, outcome
        and reason (a few of each), not on every request."""
        route = scope.get("route")
        key = (id(route), kind, reason)
        found = self._events.get(key)
        if found is None or found[0] is not route:
            found = self._events[key] = (route, events.Event(kind, events.route_of(scope), reason))
        return found[1]

    def _storing(
        self,
        result: Response,
        key: str,
        request: Request,
        token: str | None,
        gzip: bool,
        end: End,
        extra: RawHeaders | None = None,
        why: Outcome | None = None,
    ) -> StoringResponse:
        """The endpoint's response, stored on its way out; ``end`` once stored or not;
        forwarded because of ``why`` (``None``: a refresh, which no client sees)."""
        writer = self._writer(key, request, token)
        encode = functools.partial(self._encoder, compress=gzip) if self.compress else None
        refused = False

        def started(not_stored: str | None) -> RawHeaders:
            """Told at the response's start whether it may be stored."""
            nonlocal refused
            refused = not_stored is not None
            if why is None:  # a refresh: no client, no outcome
                return []
            kind, _, reason = _forwarded(why)
            if refused and kind == "miss":
                kind, reason = "uncacheable", not_stored
            self._tell(request.scope, kind, reason)
            return miss_status(self.replay_options, self._entry_ttl, why, not_stored)

        def done(manifest: Manifest | None) -> Any:
            if events.listening() and not refused:
                stored = manifest is not None
                events.emit(
                    "stored" if stored else "aborted", route=events.route_of(request.scope),
                    reason=None if stored else writer.abandoned,
                )  # fmt: skip
            return end(manifest)

        return StoringResponse(result, writer, extra or [], self._storable, done, encode, started)

    async def _stale_response(
        self,
        stale: Stale,
        key: str,
        request: Request,
        headers: RequestHeaders,
        outcome: Outcome = HIT,
    ) -> Any:
        """The stale entry, marked so (``None``: its segments are gone)."""
        if stale.entry is None:
            return stale.value
        return await replay(
            self._store, stale.entry, key, stale.manifest_key, request.method,
            headers.if_none_match, self.replay_options, stale=True, outcome=outcome,
        )  # fmt: skip

    async def _instead_of_error(
        self, stale: Stale | None, key: str, request: Request, headers: RequestHeaders, error: Any
    ) -> Any:
        """The stale entry when the endpoint failed within ``stale-if-error`` (``None``:
        the error goes to the client, as without a cache)."""
        if stale is None:
            return None
        log_once(
            logger, f"stale-if-error:{id(self)}", "endpoint failed, stale served error=%r", error
        )
        failed = Outcome("stale", fwd_status=error if isinstance(error, int) else None)
        return await self._stale_response(stale, key, request, headers, failed)

    def _refresh_later(
        self,
        served: Any,
        call: Callable[[], Awaitable[Any]],
        key: str,
        request: Request | None,
        gzip: bool,
    ) -> None:
        """One refresh of a stale entry just served: after its response is sent, in the
        request's own task (the endpoint's dependencies still open), unless this or
        another process already refreshes it. A plain value has no response: its
        refresh is a task of its own."""
        end = self._flights.lead(key, bound=isinstance(served, Response))
        if end is not_leading:
            return
        refresh = functools.partial(self._refresh, call, key, request, gzip, end)
        if isinstance(served, Response):
            served.background = BackgroundTask(refresh)
        else:
            spawn(refresh(), "stale entry not refreshed")

    async def _refresh(
        self,
        call: Callable[[], Awaitable[Any]],
        key: str,
        request: Request | None,
        gzip: bool,
        end: End,
    ) -> None:
        """Call the endpoint (or function) again and store what it gives; nobody waits for
        it. A failure keeps the stale entry (logged once)."""
        try:
            if self._leases is not None:
                lease = await claim(self._leases, key)
                if lease is None:  # another process refreshes it
                    return
                end = both(end, lease.end)
            if await self._refreshed(key, request):  # by another, since it was found stale
                return
            result = await call()
            if isinstance(result, Response) and request is not None:
                token = await self._token()
                if token is None:
                    return
                add_vary(result, varied_headers(self))  # as vary_on_headers does on a miss
                stored = self._storing(result, key, request, token, gzip, end)
                end = _no_flight
                await stored(request.scope, _never, _discard)
            elif not self.skip_cache_func(result):
                await self.set_in_cache(key, result)
        except Exception as exc:
            log_once(
                logger, f"refresh:{type(exc).__name__}", "stale entry not refreshed error=%r", exc
            )
        finally:
            await ended(end)

    async def _refreshed(self, key: str, request: Request | None) -> bool:
        """Whether the entry under ``key`` is fresh (again). Never raises."""
        if request is None:
            found, _ = await self._get_value(key)
            return found is not None
        try:
            entry, _, token = await self._entry(key, request)
            if not isinstance(entry, Manifest):
                return self._plain(entry, key)[0] is not None
        except Exception:
            return False
        return _standing(entry, token, time.time()) is Freshness.FRESH

    async def _call(
        self,
        f: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        cache_read: bool,
        cache_write: bool,
        wait_for_write: bool,
    ) -> Any:
        """A plain call (outside a request): ``cached``'s semantics, with the single
        flight and the stale rules of routes."""
        key = self.get_cache_key(f, args, kwargs)
        call = functools.partial(f, *args, **kwargs)
        told = functools.partial(_told_call, getattr(f, "__qualname__", "unknown"))
        stale, hit = None, "hit"
        if cache_read:
            found, stale = await self._get_value(key)
            if (
                found is None
                and not _revalidating(stale)
                and cache_write
                and await self._flights.wait(key)
            ):
                found, stale = await self._get_value(key)
                hit = "coalesced"
            if found is not None:
                return told(found, hit)
            if stale is not None and stale.freshness is Freshness.REVALIDATE:
                if cache_write:
                    self._refresh_later(stale.value, call, key, None, False)
                return told(stale.value, "stale", "revalidate")
        flight = cache_write and self.single_flight != "off"
        end_flight = self._flights.lead(key) if flight else _no_flight
        try:
            if self._leases is not None and cache_read and flight and end_flight is not not_leading:
                look = functools.partial(self._look_value, key)
                found, _, lease = await take_turn(self._leases, key, self._flights.timeout, look)
                if found is not None:
                    return told(found, "coalesced")
                if lease is not None:
                    end_flight = both(end_flight, lease.end)
            try:
                result = await call()
            except Exception as exc:
                if stale is None:
                    raise
                log_once(
                    logger, f"stale-if-error:{id(self)}", "call failed, stale served error=%r", exc
                )
                return told(stale.value, "stale", "error")
            if cache_write and not self.skip_cache_func(result):
                if wait_for_write:
                    await self.set_in_cache(key, result)
                else:  # as ``cached``: the caller does not wait; the flight ends once stored
                    spawn(self._store_then(key, result, end_flight), "value not cached")
                    end_flight = _no_flight
            return told(
                result,
                "miss" if cache_read else "bypass",
                None if cache_read else "cache_read=False",
            )
        finally:
            await ended(end_flight)

    async def _store_then(self, key: str, value: Any, end: End) -> None:
        try:
            await self.set_in_cache(key, value)
        finally:
            await ended(end)

    def _policy(self, request: Request, method: str, headers: RequestHeaders) -> RequestPolicy:
        if not (headers.cache_control or headers.pragma or headers.authorization):
            return request_policy(method)  # the usual request: nothing to weigh
        honor = self.rules.honor_request_cache_control
        honored = honor is True or (honor is not False and self._honors_cache_control(request))
        return request_policy(
            method,
            headers.cache_control if honored else (),
            headers.pragma if honored else (),
            authorization=headers.authorization,
            vary=varied_headers(self) if headers.authorization else (),
            rules=self.rules,
        )

    def _key(
        self,
        f: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        request: Request,
        headers: RequestHeaders,
        gzip: bool,
    ) -> str:
        """The key builder's key, then the origin and the representation."""
        key: str = self.get_cache_key(f, args, kwargs)
        if self.key_host:
            scope = request.scope
            server = None if headers.host is not None else tuple(scope.get("server") or ())
            key += origin_suffix(
                scope.get("scheme", "http"), headers.host, server, scope.get("root_path", "")
            )
        if gzip:
            key += "|enc:gzip"  # each representation is its own entry
        return key

    def _writer(self, stored_key: str, request: Request, token: str | None) -> StreamWriter:
        return StreamWriter(
            self._store,
            stored_key,
            self._entry_ttl,
            self.segment_size,
            self.max_size,
            self.inline_size,
            token=token,
            variant_key=lambda names: stored_key + vary_part(request, names),
            covered=(*varied_headers(self), *(("accept-encoding",) if self.compress else ())),
            stale=self.stale,
        )

    async def _store_value(self, f: Callable[..., Any], key: str, value: Any) -> None:
        if self._plain_values:
            await self.set_in_cache(key, value)
        else:
            log_once(logger, "plain-unsigned", _UNSIGNED_PLAIN, f.__qualname__)

    async def _token(self) -> str | None:
        """The namespace token a new write records (``None``: the backend failed, so
        nothing is stored)."""
        try:
            return await self._store.ensure_token()
        except Exception as exc:
            log_once(logger, f"token:{type(exc).__name__}", "not stored: no token error=%r", exc)
            return None

    async def get_from_cache(self, key: str) -> Any:
        """A fresh plain value, as ``cached`` reads it (in this decorator's namespace)."""
        found, _ = await self._get_value(key)
        return found

    async def set_in_cache(self, key: str, value: Any) -> None:
        """Store a plain value as ``cached`` does (or, with a stale window, as a
        ``StaleValue`` record that says when it stops being fresh); a value the
        serializer cannot encode (a ``datetime`` under JSON) is one log line per type,
        not a traceback per request."""
        ttl = self._entry_ttl
        try:
            kept = ttl
            if self.stale.longest and ttl is not None:
                now, payload = time.time(), self.cache.serializer.dumps(value)
                stale = self.stale
                record = StaleValue(payload, now, now + ttl, stale.while_revalidate, stale.if_error)
                kept = ttl + stale.longest
                if isinstance(payload, (str, bytes)):
                    await self._store.put_record(key, record, kept)
                    return
                value = record  # in-process memory keeps objects as they are
            call = self.cache.set(
                self._store.fit(key), value, ttl=self._store.expiry(kept),
                namespace=self._store.namespace,
            )  # fmt: skip
            await self._store.timed(call, "set")
        except Exception as exc:
            log_once(
                logger, f"set:{type(exc).__name__}:{type(value).__qualname__}",
                "value not cached type=%s error=%r", type(value).__qualname__, exc,
            )  # fmt: skip

    def _honors_cache_control(self, request: Request) -> bool:
        honor = self.rules.honor_request_cache_control
        assert callable(honor)
        try:
            return bool(honor(request))
        except Exception as exc:  # the user's callable failing must not fail the request
            log_once(logger, "honor-callable", "honor_request_cache_control raised: %r", exc)
            return False

    def _held(self, key: str, method: str, headers: RequestHeaders) -> tuple[Any, Held | None]:
        """A fresh hit this process holds (in-process memory, a near tier), answered
        without awaiting anything: an inline body, a ``304``, a ``HEAD``, a plain value;
        a plain ``GET``'s is prepared once (``HotHits``). Else ``None``, and what was
        read, for ``_lookup`` to decide from (a miss; a stale or varied entry; a body in
        segments), or ``None`` when it has to read (from the backend; an entry to refuse,
        which it logs)."""
        now = time.time()
        plain = method == "GET" and headers.if_none_match is None
        if plain:
            found = self._hot.answer(key, now)
            if found is not None:
                return found, None
        try:
            held = self._store.held(key)
        except Exception:
            return None, None
        if held is None:
            return None, None
        entry = held.entry
        if not isinstance(entry, Manifest):
            value = self._plain(entry, key)[0]
            if plain and value is not None:
                until = entry.expires_at if isinstance(entry, StaleValue) else None
                self._hot.keep_value(key, held, until, value)
            return value, held
        if _standing(entry, held.token, now) is not Freshness.FRESH:
            return None, held
        options = self.replay_options
        marks = hit_marks(entry, now, options)
        found = ready_hit(entry, now, method, headers.if_none_match, options, marks)
        if plain and found is not None and entry.inline is not None:
            until = hit_headers_until(entry, now)
            self._hot.keep_response(key, held, until, found.raw_headers, [entry.inline])
        return found, held

    async def _lookup(
        self, key: str, request: Request, headers: RequestHeaders, held: Held | None = None
    ) -> tuple[Any, str | None, Stale | None]:
        """A response (or plain value) for a fresh hit, ``None`` otherwise; the namespace
        token read with it (``None`` when there is none or the read failed); and the
        entry when it is stale but may still be served. Never raises. ``held``: what
        ``_held`` already read under ``key``, not read again."""
        try:
            entry, manifest_key, token = await self._entry(key, request, held)
            if not isinstance(entry, Manifest):
                found, stale = self._plain(entry, key)
                return found, token, stale
        except Exception as exc:
            _read_failed(exc)
            return None, None, None
        state = _standing(entry, token, time.time())
        if state is Freshness.EXPIRED:
            return None, token, None
        if state is not Freshness.FRESH:
            return None, token, Stale(state, entry, manifest_key)
        found = await replay(
            self._store, entry, key, manifest_key, request.scope["method"], headers.if_none_match,
            self.replay_options,
        )  # fmt: skip
        return found, token, None

    async def _entry(
        self, key: str, request: Request, held: Held | None = None
    ) -> tuple[Any, str, str | None]:
        """What is stored under ``key`` (this request's variant when the endpoint said
        ``Vary``: ``None`` if it has none), the key it is under, and the namespace token
        read with it (or ``held`` already). Raises what the backend or the record's check
        raises."""
        entry, token = (held.entry, held.token) if held else await self._store.lookup(key)
        if not isinstance(entry, VaryIndex):
            return entry, key, token
        manifest_key = key + vary_part(request, entry.names)
        entry = await self._store.get_entry(manifest_key)
        return (entry if isinstance(entry, Manifest) else None), manifest_key, token

    async def _look(
        self, key: str, request: Request, headers: RequestHeaders
    ) -> tuple[Any, str | None]:
        """``_lookup`` as a waiter for another process looks again: fresh, or nothing."""
        found, token, _ = await self._lookup(key, request, headers)
        return found, token

    async def _get_value(self, key: str) -> tuple[Any, Stale | None]:
        """A fresh plain value (``None``: a miss, as under ``cached``), and the value when
        it is stale but may still be served. Never raises. Concurrent reads of one key
        share one backend read (``SegmentStore.lookup``), so they all find the value,
        or all miss and follow the one that leads: never a read that ends after the
        leader is done, and calls again."""
        try:
            entry, _ = await self._store.lookup(key)
            return self._plain(entry, key)
        except Exception as exc:
            _read_failed(exc)
            return None, None

    async def _look_value(self, key: str) -> tuple[Any, str | None]:
        found, _ = await self._get_value(key)
        return found, None

    def _plain(self, entry: Any, key: str) -> tuple[Any, Stale | None]:
        """What a plain value found under ``key`` gives: fresh, stale, or a miss."""
        if isinstance(entry, StaleValue):
            state = freshness(entry.expires_at, entry.stale_rules, time.time())
            if state is Freshness.EXPIRED:
                return None, None
            value = self.cache.serializer.loads(entry.payload)
            return (value, None) if state is Freshness.FRESH else (None, Stale(state, value=value))
        if isinstance(entry, (Manifest, VaryIndex)):  # a route's entry, not a value
            return None, None
        if entry is not None and not self._plain_values:
            log_once(logger, "plain-refused", "unsigned plain value refused, miss key=%s", key)
            return None, None
        return entry, None


class _Asked(NamedTuple):
    """What a request asks of the cache: its ``request`` (FastAPI's ``sub_response``),
    the headers and policy the cache acts on, its ``key``, and whether the cache is to
    answer it gzipped, may ``read`` an entry, may ``write`` one."""

    request: Request
    sub_response: Response | None
    headers: RequestHeaders
    policy: RequestPolicy
    key: str
    gzip: bool
    read: bool
    write: bool
    held: Held | None  # what ``_held`` read, for ``_lookup`` not to read it again


@dataclasses.dataclass(frozen=True)
class Stale:
    """An entry past its freshness that may still be served: a route's stored response
    (``entry``, its manifest under ``manifest_key``) or a plain ``value``."""

    freshness: Freshness
    entry: Manifest | None = None
    manifest_key: str = ""
    value: Any = None


def _standing(entry: Manifest, token: str | None, now: float) -> Freshness:
    """Where a stored response stands at ``now``; one written before its namespace was
    last invalidated (another token) is as good as expired."""
    if entry.token is None or entry.token != token:
        return Freshness.EXPIRED
    return freshness(entry.expires_at, entry.stale_rules, now)


def _revalidating(stale: Stale | None) -> bool:
    """Whether ``stale`` is served at once (while one refresh runs)."""
    return stale is not None and stale.freshness is Freshness.REVALIDATE


def _read_failed(exc: Exception) -> None:
    if isinstance(exc, SerializerError):
        log_once(logger, f"entry:{exc}"[:80], "cache entry refused, miss reason=%s", exc)
    else:
        log_once(logger, f"read:{type(exc).__name__}", "cache read failed, miss error=%r", exc)


async def _never() -> Message:
    """A refresh's ``receive``: no client is there to disconnect."""
    await asyncio.Future()
    raise AssertionError("unreachable")


async def _discard(message: Message) -> None:
    """A refresh's ``send``: the response is stored, sent to nobody."""


_MARKS = {"hit": b"HIT", "coalesced": b"HIT", "stale": b"STALE"}


def _forwarded(why: Outcome) -> tuple[str, Outcome, str | None]:
    """The event of a request sent to the endpoint ``why``: a ``miss``, or a ``bypass``
    (with the reason), and its ``Cache-Status``."""
    if why.fwd == "miss":
        return "miss", why, None
    return "bypass", why, why.detail or why.fwd


def _told_call(name: str, result: Any, kind: str, reason: str | None = None) -> Any:
    """``result`` of a plain call, its outcome told to the event listeners."""
    if events.listening():
        events.emit(kind, route=name, reason=reason)
    return result


def _no_flight(*_: Any) -> None:
    """Requests that do not write lead no flight."""


_UNSIGNED_PLAIN = (
    "stream_cached(secret=...) does not store the plain value of %s: only entries it can "
    "authenticate are served. Fix: give the cache CompressionSerializer(secret=...) as its "
    "serializer, or return a Response"
)
