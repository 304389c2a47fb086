"""``CompressionSerializer``: big values in small cache entries, safe to swap into a live cache."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Union

from aiocache.serializers import BaseSerializer, PickleSerializer, StringSerializer

from .._config import build
from ..exceptions import SerializerError
from . import envelope
from .codecs import DEFAULT_LEVELS, Codec, compress

#: Payloads smaller than this are stored uncompressed: compressing them saves a few
#: bytes at best and costs a codec call on every read.
DEFAULT_MIN_SIZE = 1024
#: Cap on a value's decompressed size, which bounds the memory a bad entry can take.
DEFAULT_MAX_SIZE = 256 * 1024 * 1024

_SHORT_NAMES = {
    name: f"aiocache.serializers.{name.capitalize()}Serializer"
    for name in ("pickle", "json", "string", "null")
} | {"msgpack": "aiocache.serializers.MsgPackSerializer"}

InnerSpec = Union[BaseSerializer, type, str, Mapping[str, Any], None]


class CompressionSerializer(BaseSerializer):  # type: ignore[misc]
    """Serialise with an inner aiocache serializer, then compress (pickle + zlib by default).

    Every stored value carries a header naming its codec, so any configuration reads what
    any other wrote, and values written by plain ``PickleSerializer`` or by
    ``zlib.compress(pickle.dumps(v))`` are read too. Options accept plain strings, as
    aiocache config dicts give them. ``secret`` signs values (HMAC-SHA256) and refuses any
    value that is not signed with it before unpickling a byte. Values that cannot be read
    raise ``SerializerError`` (a ``ValueError``), which aiocache's ``cached`` treats as a miss.
    """

    DEFAULT_ENCODING = None

    def __init__(
        self,
        inner: InnerSpec = None,
        codec: str | Codec = Codec.ZLIB,
        level: int | str | None = None,
        min_size: int | str = DEFAULT_MIN_SIZE,
        max_size: int | str = DEFAULT_MAX_SIZE,
        secret: str | bytes | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("encoding", None)
        super().__init__(**kwargs)
        self.inner: BaseSerializer = _make_inner(inner)
        self.codec = Codec.parse(codec)
        self.codec.require()
        self.level = DEFAULT_LEVELS[self.codec] if level is None else int(level)
        self.min_size = int(min_size)
        self.max_size = int(max_size)
        if self.max_size <= 0:
            raise ValueError(f"max_size must be positive, got {max_size!r}")
        self._secret = secret.encode() if isinstance(secret, str) else secret

    @property
    def secret(self) -> bytes | None:
        """The signing secret, for code that stores other records beside these values
        (``stream_cached`` seals its manifests with it)."""
        return self._secret

    def __repr__(self) -> str:
        return (
            f"CompressionSerializer(inner={type(self.inner).__name__}(), "
            f"codec={self.codec.name.lower()!r}, level={self.level}, min_size={self.min_size}, "
            f"max_size={self.max_size}, signed={self._secret is not None})"
        )

    def dumps(self, value: Any) -> bytes:
        raw = self.inner.dumps(value)
        text = isinstance(raw, str)
        data: bytes = raw.encode() if text else raw
        codec, payload = Codec.NONE, data
        if self.codec is not Codec.NONE and len(data) >= self.min_size:
            compressed = compress(self.codec, data, self.level)
            if len(compressed) < len(data):  # incompressible data is kept as it is
                codec, payload = self.codec, compressed
        return envelope.pack(codec, payload, len(data), text=text, secret=self._secret)

    def loads(self, value: bytes | None) -> Any:
        if value is None:  # aiocache passes the backend's None for a missing key
            return None
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise SerializerError(
                f"expected bytes from the cache, got {type(value).__name__}. HINT: the cache "
                f"must not decode values; leave the serializer's encoding at None"
            )
        blob = bytes(value)
        frame = envelope.unpack(blob, self._secret)
        if frame is None:
            # No header: written by the inner serializer alone (or raw, e.g. a RedLock
            # token). StringSerializer gets text, as it would from the cache itself.
            data = envelope.open_legacy(blob, self.max_size)
            text = isinstance(self.inner, StringSerializer) and _is_utf8(data)
        else:
            data, text = envelope.open_frame(frame, self.max_size), frame.text
        try:
            return self.inner.loads(data.decode() if text else data)
        except Exception as exc:
            raise SerializerError(
                f"{type(self.inner).__name__} cannot read the stored value: {exc!r}"
            ) from exc


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode()
    except UnicodeDecodeError:
        return False
    return True


def _make_inner(spec: InnerSpec) -> BaseSerializer:
    """An inner serializer from an instance, a class, a name, a dotted path or a config dict."""
    if spec is None:
        return PickleSerializer()
    if isinstance(spec, str):
        spec = _SHORT_NAMES.get(spec.lower(), spec)
    try:
        inner: BaseSerializer = build(spec, BaseSerializer, "class")
    except ValueError as exc:
        raise ValueError(
            f"unknown serializer {spec!r} ({exc}); use one of {sorted(_SHORT_NAMES)}"
        ) from None
    return inner
