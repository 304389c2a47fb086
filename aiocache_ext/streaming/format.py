"""A stored response: a manifest under the route's key, the body in fixed-size segments.

The manifest is written last, once every segment is stored, so a reader that finds one
finds a complete body; each write has its own random ``write_id`` in its segment keys,
so two writers never mix and an older entry's segments are never read for a newer one.
The manifest lists a check value per segment and may be sealed (``integrity``). A
response whose endpoint says ``Vary`` is stored under a variant key (the base key plus the
varied request values), and the base key holds a ``VaryIndex`` naming those headers. Both
records are ASCII text (JSON; header bytes as latin-1 code points), so they survive every
aiocache serializer and backend encoding. A plain value stored with a stale window is a
third record, ``StaleValue``: the value as the cache's serializer wrote it, and when it
stops being fresh. Pure: no I/O.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import functools
import json
import math
import re
import secrets
from collections.abc import Sequence
from typing import Any

from ..exceptions import SerializerError
from ..http.staleness import StaleRules
from .integrity import PLAIN, Integrity

#: Every record this module writes starts with ``FAMILY``: one of another version is
#: never mistaken for a plain value, only refused (version 4: entries may be kept past
#: their freshness, which a reader of version 3 would serve as fresh).
FAMILY = "aiocache_ext.stream/"
MANIFEST_PREFIX = FAMILY + "4 "
_FAMILY_BYTES = FAMILY.encode()

#: Not replayed: they describe one connection or one client (RFC 9110 Section 7.6.1),
#: or are recomputed from the stored body.
DROPPED_HEADERS = frozenset(
    {
        "connection", "keep-alive", "proxy-connection", "te", "trailer",
        "transfer-encoding", "upgrade", "set-cookie", "content-length", "date",
    }
)  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Manifest:
    """Everything a hit needs besides the body bytes."""

    status: int
    headers: tuple[tuple[bytes, bytes], ...]
    size: int
    segment_size: int
    write_id: str
    etag: str
    stored_at: float
    expires_at: float | None
    inline: bytes | None = None  # a small body, kept in the manifest: one read per hit
    checks: tuple[str, ...] = ()  # one per segment (``Integrity.segment_check``)
    token: str | None = None  # the namespace token when the write started (see namespaces)
    stale_while_revalidate: float = 0.0  # seconds past ``expires_at`` (http.staleness)
    stale_if_error: float = 0.0

    @functools.cached_property
    def stale_rules(self) -> StaleRules:  # once per record: parsed records are reused
        return StaleRules(self.stale_while_revalidate, self.stale_if_error)

    @property
    def segments(self) -> int:
        if self.inline is not None or not self.size:
            return 0
        return math.ceil(self.size / self.segment_size)

    @functools.cached_property
    def replay_headers(self) -> tuple[tuple[bytes, bytes], ...]:
        """Stored headers plus ``ETag`` and ``Content-Length``: the same on every hit."""
        names = {k.lower() for k, _ in self.headers}
        etag = () if b"etag" in names else ((b"etag", self.etag.encode("latin-1")),)
        if self.status in NO_BODY_STATUSES:  # RFC 9110 Section 8.6: no Content-Length
            return (*self.headers, *etag)
        return (*self.headers, *etag, (b"content-length", str(self.size).encode()))

    @functools.cached_property
    def cache_control(self) -> str | None:
        """The endpoint's own ``Cache-Control``, if it sent one."""
        found = [v.decode("latin-1") for k, v in self.headers if k.lower() == b"cache-control"]
        return ", ".join(found) if found else None

    def segment_length(self, index: int) -> int:
        """The exact length segment ``index`` must have (all full but the last)."""
        return min(self.segment_size, self.size - index * self.segment_size)

    def segment_key(self, base_key: str, index: int) -> str:
        return segment_key(base_key, self.write_id, index)

    def dumps(self, key: str | bytes, integrity: Integrity = PLAIN) -> str:
        """The record to store under ``key`` (the backend key: seals bind to it)."""
        data = dataclasses.asdict(self)
        data["headers"] = [[k.decode("latin-1"), v.decode("latin-1")] for k, v in self.headers]
        data["inline"] = None if self.inline is None else base64.b64encode(self.inline).decode()
        return _dump(key, data, integrity)

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Manifest:
        """A manifest from its parsed JSON; malformed data raises ``SerializerError``."""
        try:
            headers = tuple(
                (str(k).encode("latin-1"), str(v).encode("latin-1")) for k, v in data["headers"]
            )
            manifest = cls(
                status=int(data["status"]),
                headers=headers,
                size=int(data["size"]),
                segment_size=int(data["segment_size"]),
                write_id=str(data["write_id"]),
                etag=str(data["etag"]),
                stored_at=float(data["stored_at"]),
                expires_at=None if data["expires_at"] is None else float(data["expires_at"]),
                inline=None if data.get("inline") is None else base64.b64decode(data["inline"]),
                checks=tuple(str(c) for c in data["checks"]),
                token=None if data.get("token") is None else str(data["token"]),
                stale_while_revalidate=float(data.get("stale_while_revalidate", 0.0)),
                stale_if_error=float(data.get("stale_if_error", 0.0)),
            )
        except (ValueError, KeyError, TypeError, UnicodeError, binascii.Error) as exc:
            raise SerializerError(f"corrupt stream manifest: {exc!r}") from exc
        negative = min(manifest.stale_while_revalidate, manifest.stale_if_error) < 0
        if manifest.size < 0 or manifest.segment_size <= 0 or negative:
            raise SerializerError("corrupt stream manifest: impossible sizes or windows")
        if not 100 <= manifest.status <= 599:
            raise SerializerError("corrupt stream manifest: impossible status")
        if manifest.inline is not None and len(manifest.inline) != manifest.size:
            raise SerializerError("corrupt stream manifest: inline body of the wrong size")
        if len(manifest.checks) != manifest.segments:
            raise SerializerError("corrupt stream manifest: not one check per segment")
        return manifest


@dataclasses.dataclass(frozen=True)
class VaryIndex:
    """Stored under a route's base key when its response said ``Vary``: the request
    headers whose values choose the variant key (RFC 9111 Section 4.1)."""

    names: tuple[str, ...]

    def dumps(self, key: str | bytes, integrity: Integrity = PLAIN) -> str:
        return _dump(key, {"vary": list(self.names)}, integrity)


@dataclasses.dataclass(frozen=True)
class StaleValue:
    """A plain value stored with a stale window: ``payload`` is what the cache's
    serializer made of it (text, or bytes kept as base64; in-process memory keeps the
    whole ``StaleValue`` as an object, its payload the value itself)."""

    payload: Any
    stored_at: float
    expires_at: float | None
    stale_while_revalidate: float = 0.0
    stale_if_error: float = 0.0

    @functools.cached_property
    def stale_rules(self) -> StaleRules:  # once per record: parsed records are reused
        return StaleRules(self.stale_while_revalidate, self.stale_if_error)

    def dumps(self, key: str | bytes, integrity: Integrity = PLAIN) -> str:
        data = dataclasses.asdict(self)
        payload = self.payload
        binary = not isinstance(payload, str)
        data["payload"] = (
            payload if isinstance(payload, str) else base64.b64encode(payload).decode()
        )
        data["binary"] = binary
        return _dump(key, {"value": data}, integrity)

    @classmethod
    def from_data(cls, data: Any) -> StaleValue:
        try:
            payload = data["payload"]
            value = cls(
                payload=base64.b64decode(payload) if data["binary"] else str(payload),
                stored_at=float(data["stored_at"]),
                expires_at=None if data["expires_at"] is None else float(data["expires_at"]),
                stale_while_revalidate=float(data["stale_while_revalidate"]),
                stale_if_error=float(data["stale_if_error"]),
            )
        except (ValueError, KeyError, TypeError, binascii.Error) as exc:
            raise SerializerError(f"corrupt stored value: {exc!r}") from exc
        if min(value.stale_while_revalidate, value.stale_if_error) < 0:
            raise SerializerError("corrupt stored value: negative windows")
        return value


#: Statuses whose responses have no body, hence no ``Content-Length`` on replay.
NO_BODY_STATUSES = frozenset({204, 304})


def _dump(key: str | bytes, data: dict[str, Any], integrity: Integrity) -> str:
    return MANIFEST_PREFIX + integrity.seal(key, json.dumps(data, separators=(",", ":")))


@functools.lru_cache(maxsize=512)
def parse_record(
    raw: str | bytes, key: str | bytes, integrity: Integrity = PLAIN
) -> Manifest | VaryIndex | StaleValue:
    """A stored record read under ``key``; ``SerializerError`` when it is malformed, of
    another format version, or refused by ``integrity``. Remembered: a hot entry is read
    again and again, unchanged."""
    text = raw.decode("latin-1") if isinstance(raw, (bytes, bytearray)) else raw
    if not text.startswith(MANIFEST_PREFIX):
        raise SerializerError(f"stream record of another format: {text[:40]!r}")
    body = integrity.unseal(key, text[len(MANIFEST_PREFIX) :])
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise SerializerError(f"corrupt stream record: {exc!r}") from exc
    if not isinstance(data, dict):
        raise SerializerError("corrupt stream record: not an object")
    if "vary" in data:
        names = data["vary"]
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise SerializerError("corrupt vary index")
        return VaryIndex(tuple(names))
    if "value" in data:
        return StaleValue.from_data(data["value"])
    return Manifest.from_data(data)


def is_record(raw: object) -> bool:
    """Whether a value read under a route's key is one of ours (vs a plain value)."""
    if isinstance(raw, str):
        return raw.startswith(FAMILY)
    if isinstance(raw, (bytes, bytearray)):
        return bytes(raw[: len(_FAMILY_BYTES)]) == _FAMILY_BYTES
    return False


def new_write_id() -> str:
    return secrets.token_hex(8)


def segment_key(base_key: str, write_id: str, index: int) -> str:
    """``<key>:{<write id>}:<index>``: the write id is a Redis Cluster hash tag, so the
    segments of one write share a slot (a replay batch is one ``MGET`` on one node)
    while different entries spread over the cluster."""
    return f"{base_key}:{{{write_id}}}:{index}"


_SEGMENT_KEY = re.compile(rb":\{[0-9a-f]{16}\}:[0-9]+\Z")

#: How long a segment may outlive what pointed at it: segments are written to live this
#: much longer than their entry, and a replaced or invalidated entry's segments are
#: given this long to go, so a replay under way when it went still finishes.
SEGMENT_GRACE = 60.0


def is_segment_key(key: str | bytes) -> bool:
    """Whether a backend key is a segment's (``segment_key``), which a replay under way
    may still be reading: those are let expire within ``SEGMENT_GRACE``, not deleted."""
    return _SEGMENT_KEY.search(key.encode() if isinstance(key, str) else key) is not None


def header_values(raw_headers: Sequence[tuple[bytes, bytes]], name: bytes) -> list[str]:
    """The values of header ``name`` (lower-case bytes) in a raw ASGI header list."""
    return [v.decode("latin-1").strip() for k, v in raw_headers if k.lower() == name]


def stored_headers(raw_headers: Sequence[tuple[bytes, bytes]]) -> tuple[tuple[bytes, bytes], ...]:
    """The endpoint's headers worth replaying, bytes kept exactly as sent."""
    return tuple(
        (k, v) for k, v in raw_headers if k.lower().decode("latin-1") not in DROPPED_HEADERS
    )


class Segmenter:
    """Coalesces chunks of any size into segments of exactly ``size`` bytes (the last
    one shorter), holding at most one segment in memory."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._buffer = bytearray()

    def feed(self, chunk: bytes) -> list[bytes]:
        self._buffer += chunk
        full = []
        while len(self._buffer) >= self.size:
            full.append(bytes(self._buffer[: self.size]))
            del self._buffer[: self.size]
        return full

    def finish(self) -> bytes | None:
        rest, self._buffer = bytes(self._buffer), bytearray()
        return rest or None
