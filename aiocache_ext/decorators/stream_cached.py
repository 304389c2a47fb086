"""``stream_cached``: aiocache's ``cached`` for routes, ``StreamingResponse`` included."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Collection
from typing import Any

from aiocache import Cache, cached, caches
from aiocache.base import SENTINEL, BaseCache
from starlette.requests import Request
from starlette.responses import Response

from .._log import log_once
from ..exceptions import SerializerError
from ..http.encoding import accepts
from ..http.etag import if_none_match_matches, not_modified_headers
from ..http.policy import age, client_cache_control, request_policy
from ..keys import host_suffix
from ..keys import key_builder as default_keys
from ..streaming.encoder import GzipEncoder
from ..streaming.format import Manifest, VaryIndex
from ..streaming.integrity import Integrity
from ..streaming.reader import DEFAULT_BATCH, SegmentReader
from ..streaming.responses import RawHeaders, ReplayResponse, StoringResponse, storable_check
from ..streaming.store import SegmentStore
from ..streaming.writer import StreamWriter
from ..ttl import parse_ttl
from ._key_scope import install, scoped_key, varied_headers
from ._signature import EndpointSignature, take_request
from ._single_flight import Flights
from .vary_on_headers import REQUEST_PARAM, vary_part

logger = logging.getLogger(__name__)
_NO_CACHE = (b"cache-control", b"no-cache")

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
    - ``lock_timeout``: how long concurrent misses wait for the first one (seconds);
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
        lock_timeout: float = 30.0,
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
        self.segment_size = int(segment_size)
        self.max_size = int(max_size)
        self.header_name = header_name.lower().encode("latin-1") if header_name else None
        self._hit_marker = [(self.header_name, b"HIT")] if self.header_name else []
        self.allow_authorized = allow_authorized
        self.honor_no_store = honor_no_store
        honor = honor_request_cache_control
        if not isinstance(honor, bool) and not callable(honor):
            raise TypeError(
                "honor_request_cache_control must be True, False or a callable taking the "
                f"Request and returning a bool, not {honor!r}"
            )
        self.honor_request_cache_control = honor_request_cache_control
        self.key_host = key_host
        self._secret = secret.encode() if isinstance(secret, str) else secret
        if not 0 <= compress_level <= 9:
            raise ValueError(f"compress_level must be 0..9 (zlib levels), not {compress_level}")
        self.compress = compress
        self.compress_level = compress_level
        self.compress_min_size = compress_min_size
        self.client_max_age = client_max_age
        self.lock_timeout = lock_timeout
        self.read_batch = read_batch
        self.inline_size = min(int(inline_size), self.segment_size)
        self._storable = storable_check(frozenset(statuses), allow_private, allow_set_cookie)
        self._flights = Flights(lock_timeout)
        self._request_param = (REQUEST_PARAM, True)

    def __call__(self, f: Callable[..., Any]) -> Callable[..., Any]:
        varied = getattr(f, "aiocache_ext_varies_on", None)
        if varied is not None:  # this entry would not vary: one variant for everyone
            raise TypeError(
                f"@stream_cached(...) stands above @vary_on_headers{varied!r} on "
                f"{getattr(f, '__qualname__', f)!r}, so its entries would not vary. HINT: "
                "order the decorators as @router.get(...), @vary_on_headers(...), "
                "@stream_cached(...)"
            )
        if isinstance(self._cache, BaseCache):
            self.cache = self._cache
        elif self.alias:
            self.cache = caches.get(self.alias)
        else:
            self.cache = Cache(
                self._cache, serializer=self._serializer, namespace=self._namespace,
                plugins=self._plugins, **self._kwargs,
            )  # fmt: skip
        install(self.cache)
        # A ready instance keeps its own namespace unless this decorator names one.
        namespace = self._namespace if isinstance(self._cache, BaseCache) else None
        serializer_secret = getattr(self.cache.serializer, "secret", None)
        self._integrity = Integrity(self._secret or serializer_secret)
        # With a secret, a plain value is trusted only from a serializer that signs it.
        self._plain_values = self._integrity.secret is None or serializer_secret is not None
        self._store = SegmentStore(self.cache, self._integrity, namespace)
        ttl = self.cache.ttl if self.ttl is SENTINEL else self.ttl
        self._entry_ttl = None if ttl is None else parse_ttl(ttl)  # once, not per request
        signature = EndpointSignature(f)
        self._request_param = signature.parameter_for(Request, REQUEST_PARAM)

        @functools.wraps(f)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            return await self.decorator(f, *args, **kwargs)

        wrapper.cache = self.cache  # type: ignore[attr-defined]
        wrapper.__signature__ = signature.signature()  # type: ignore[attr-defined]
        return wrapper

    async def decorator(
        self,
        f: Callable[..., Any],
        *args: Any,
        cache_read: bool = True,
        cache_write: bool = True,
        aiocache_wait_for_write: bool = True,
        **kwargs: Any,
    ) -> Any:
        request = take_request(args, kwargs, *self._request_param)
        if not isinstance(request, Request):  # a plain function call: exactly ``cached``
            return await super().decorator(
                f, *args, cache_read=cache_read, cache_write=cache_write,
                aiocache_wait_for_write=aiocache_wait_for_write, **kwargs,
            )  # fmt: skip

        headers, method = _RequestHeaders(request), request.method
        honored = self.honor_request_cache_control is True or (
            self.honor_request_cache_control is not False and self._honors_cache_control(request)
        )
        policy = request_policy(
            method,
            headers.cache_control if honored else (),
            headers.pragma if honored else (),
            authorization=headers.authorization,
            vary=varied_headers(self.cache) if headers.authorization else (),
            allow_authorized=self.allow_authorized,
            honor_no_store=self.honor_no_store,
        )
        key = self.get_cache_key(f, args, kwargs)
        if self.key_host:
            scope = request.scope
            key += _origin_suffix(
                scope.get("scheme", "http"),
                headers.host,
                None if headers.host is not None else tuple(scope.get("server") or ()),
                scope.get("root_path", ""),
            )
        gzip = self.compress and accepts("gzip", headers.accept_encoding)
        if gzip:
            key += "|enc:gzip"  # each representation is its own entry
        stored_key = scoped_key(self.cache, key)  # final now: the response outlives the call
        read = cache_read and policy.read.ok
        write = cache_write and policy.write.ok and method == "GET"
        token = None
        if read:
            found, token = await self._lookup(stored_key, request, method, headers.if_none_match)
            if found is not None:
                return found
        if read and write and await self._flights.wait(stored_key):
            found, token = await self._lookup(stored_key, request, method, headers.if_none_match)
            if found is not None:
                return found
        end_flight = self._flights.lead(stored_key) if write else _no_flight
        if write and token is None:  # a new namespace, or the read was skipped or failed
            token = await self._token()
            if token is None:
                write = False
                end_flight()
        try:
            result = await f(*args, **kwargs)
        except BaseException:
            end_flight()
            raise
        if not isinstance(result, Response):
            if write and not self.skip_cache_func(result):
                if self._plain_values:
                    await self.set_in_cache(key, result)
                else:
                    log_once(logger, "plain-unsigned", _UNSIGNED_PLAIN, f.__qualname__)
            end_flight()
            return result
        extra = self._miss_headers(result)
        if not write:
            result.raw_headers.extend(extra)
            return result
        writer = StreamWriter(
            self._store,
            stored_key,
            self._entry_ttl,
            self.segment_size,
            self.max_size,
            self.inline_size,
            token=token,
            variant_key=lambda names: stored_key + vary_part(request, names),
            covered=(*varied_headers(self.cache), *(("accept-encoding",) if self.compress else ())),
        )
        encode = None
        if self.compress:
            encode = functools.partial(
                GzipEncoder,
                compress=gzip,
                level=self.compress_level,
                min_size=self.compress_min_size,
            )
        return StoringResponse(result, writer, extra, self._storable, end_flight, encode)

    async def _token(self) -> str | None:
        """The namespace token a new write records (``None``: the backend failed, so
        nothing is stored)."""
        try:
            return await self._store.ensure_token()
        except Exception as exc:
            log_once(logger, f"token:{type(exc).__name__}", "not stored: no token error=%r", exc)
            return None

    async def get_from_cache(self, key: str) -> Any:
        """A plain value, as ``cached`` reads it (in this decorator's namespace)."""
        try:
            return await self.cache.get(key, namespace=self._store.namespace)
        except Exception as exc:
            log_once(logger, f"get:{type(exc).__name__}", "cache read failed, miss error=%r", exc)
            return None

    async def set_in_cache(self, key: str, value: Any) -> None:
        """Store a plain value as ``cached`` does, but a value the serializer cannot
        encode (a ``datetime`` under JSON) is one log line per type, not a traceback per
        request."""
        ttl = self._store.expiry(self._entry_ttl)
        try:
            await self.cache.set(key, value, ttl=ttl, namespace=self._store.namespace)
        except Exception as exc:
            log_once(
                logger, f"set:{type(exc).__name__}:{type(value).__qualname__}",
                "value not cached type=%s error=%r", type(value).__qualname__, exc,
            )  # fmt: skip

    def _honors_cache_control(self, request: Request) -> bool:
        honor = self.honor_request_cache_control
        assert callable(honor)
        try:
            return bool(honor(request))
        except Exception as exc:  # the user's callable failing must not fail the request
            log_once(logger, "honor-callable", "honor_request_cache_control raised: %r", exc)
            return False

    async def _lookup(
        self, key: str, request: Request, method: str, if_none_match: str | None
    ) -> tuple[Any, str | None]:
        """A response (or plain value) for a hit, ``None`` for a miss; and the namespace
        token read with it (``None`` when there is none or the read failed). Never raises."""
        manifest_key, token = key, None
        try:
            entry, token = await self._store.lookup(key)
            if isinstance(entry, VaryIndex):  # the endpoint said Vary: find this variant
                manifest_key = key + vary_part(request, entry.names)
                entry = await self._store.get_entry(manifest_key)
                if not isinstance(entry, Manifest):
                    return None, token
        except SerializerError as exc:
            log_once(logger, f"entry:{exc}"[:80], "cache entry refused, miss reason=%s", exc)
            return None, token
        except Exception as exc:
            log_once(logger, f"read:{type(exc).__name__}", "cache read failed, miss error=%r", exc)
            return None, token
        if not isinstance(entry, Manifest):
            if entry is not None and not self._plain_values:
                log_once(logger, "plain-refused", "unsigned plain value refused, miss key=%s", key)
                return None, token
            return entry, token
        if entry.token is None or entry.token != token:
            return None, token  # written before its namespace was last invalidated
        return await self._replay(entry, key, manifest_key, method, if_none_match), token

    async def _replay(
        self, entry: Manifest, key: str, manifest_key: str, method: str, if_none_match: str | None
    ) -> Response | None:
        """The response for a valid entry: ``304``, ``HEAD``, inline or streamed body;
        ``None`` when its first segments are gone (nothing sent yet: a miss)."""
        headers = self._hit_headers(entry)
        if if_none_match is not None and if_none_match_matches(if_none_match, entry.etag):
            keep = not_modified_headers(
                {k.decode("latin-1"): v.decode("latin-1") for k, v in headers}
            )
            return Response(status_code=304, headers=keep)
        if method == "HEAD":
            return ReplayResponse(entry, headers, None, None, None)
        if entry.inline is not None:
            return ReplayResponse(entry, headers, None, [entry.inline], None)
        reader = SegmentReader(self._store, key, entry, self.read_batch)
        try:
            first = await reader.fetch(0)
        except Exception as exc:  # a segment is gone: nothing sent yet, so it is a miss
            log_once(logger, f"segments:{type(exc).__name__}", "entry unusable, miss error=%r", exc)
            await self._forget(manifest_key)()
            return None
        return ReplayResponse(entry, headers, reader, first, self._forget(manifest_key))

    def _hit_headers(self, manifest: Manifest) -> RawHeaders:
        now = time.time()
        headers = [*manifest.replay_headers, (b"age", str(age(manifest.stored_at, now)).encode())]
        if self.client_max_age:
            remaining = None if manifest.expires_at is None else manifest.expires_at - now
            sent = client_cache_control(manifest.cache_control, remaining, client_max_age=True)
            if sent is not None:
                headers.append((b"cache-control", sent.encode()))
        elif manifest.cache_control is None:
            headers.append(_NO_CACHE)  # what client_cache_control gives without max-age
        headers.extend(self._hit_marker)
        return headers

    def _miss_headers(self, response: Response) -> RawHeaders:
        extra: RawHeaders = []
        if "cache-control" not in response.headers:
            remaining = self._entry_ttl
            sent = client_cache_control(None, remaining, client_max_age=self.client_max_age)
            extra.append((b"cache-control", (sent or "no-cache").encode()))
        if self.header_name:
            extra.append((self.header_name, b"MISS"))
        return extra

    def _forget(self, key: str) -> Callable[[], Any]:
        async def forget() -> None:
            try:
                await self.cache.delete(key)
            except Exception as exc:
                log_once(logger, "forget", "could not drop a broken entry error=%r", exc)

        return forget


def _no_flight(*_: Any) -> None:
    """Requests that do not write lead no flight."""


_UNSIGNED_PLAIN = (
    "stream_cached(secret=...) does not store the plain value of %s: only entries it can "
    "authenticate are served. Fix: give the cache CompressionSerializer(secret=...) as its "
    "serializer, or return a Response"
)


def _origin_suffix(scheme: str, host: bytes | None, server: Any, root_path: str) -> str:
    """The key part for the origin ``request.url`` and ``url_for`` use: scheme, then the
    ``Host`` header (else the server address), then the root path. Remembered for the
    few origins a service has; a long (forged) ``Host`` is not kept in memory."""
    if host is not None and len(host) > 255:
        return _origin_text_suffix(scheme, host, server, root_path)
    return _remembered_origin_suffix(scheme, host, server, root_path)


def _origin_text_suffix(scheme: str, host: bytes | None, server: Any, root_path: str) -> str:
    if host is not None:
        name = host.decode("latin-1")
    elif not server:
        name = ""
    else:
        name = server[0] if server[1] is None else f"{server[0]}:{server[1]}"
    return host_suffix(f"{scheme}://{name}{root_path}")


_remembered_origin_suffix = functools.lru_cache(maxsize=1024)(_origin_text_suffix)


class _RequestHeaders:
    """The request headers the cache acts on, in one pass over the raw ASGI list."""

    __slots__ = (
        "accept_encoding", "authorization", "cache_control", "host", "if_none_match", "pragma"
    )  # fmt: skip

    def __init__(self, request: Request) -> None:
        self.cache_control: list[str] = []
        self.pragma: list[str] = []
        self.authorization = False
        self.host: bytes | None = None
        self.accept_encoding: list[str] = []
        matches: list[str] = []
        for raw_name, raw_value in request.scope["headers"]:
            name = raw_name.lower()
            if name == b"host":
                self.host = raw_value
            elif name == b"cache-control":
                self.cache_control.append(raw_value.decode("latin-1"))
            elif name == b"pragma":
                self.pragma.append(raw_value.decode("latin-1"))
            elif name == b"authorization":
                self.authorization = True
            elif name == b"if-none-match":
                matches.append(raw_value.decode("latin-1"))
            elif name == b"accept-encoding":
                self.accept_encoding.append(raw_value.decode("latin-1"))
        self.if_none_match = ", ".join(matches) if matches else None
