"""Compression codecs: compress, and decompress with a hard cap on the output size.

zlib, gzip and lzma come with Python; zstd and lz4 are used when their extras are
installed (probed once at import, never required). Pure: bytes in, bytes out.
"""

from __future__ import annotations

import enum
import gzip
import io
import lzma
import zlib
from typing import Any, Protocol

from ..exceptions import CodecUnavailableError, SerializerError, ValueTooLargeError

try:
    import zstandard
except ImportError:  # pragma: no cover - depends on the installed extras
    zstandard = None  # type: ignore[assignment]

try:
    import lz4.frame as lz4_frame
except ImportError:  # pragma: no cover - depends on the installed extras
    lz4_frame = None


class Codec(enum.Enum):
    """A codec and its one-byte id in stored values (ids never change meaning)."""

    NONE = 0
    ZLIB = 1
    GZIP = 2
    LZMA = 3
    ZSTD = 4
    LZ4 = 5

    @classmethod
    def parse(cls, name: str | Codec) -> Codec:
        """``"zstd"``, ``"ZSTD"`` or ``Codec.ZSTD``, as config dicts give plain strings."""
        if isinstance(name, Codec):
            return name
        try:
            return cls[str(name).strip().upper()]
        except KeyError:
            known = ", ".join(c.name.lower() for c in cls if c is not cls.NONE)
            raise ValueError(f"unknown codec {name!r}; known codecs: {known}") from None

    @property
    def available(self) -> bool:
        return _EXTRAS.get(self, (None, True))[1]

    def require(self) -> None:
        """Raise ``CodecUnavailableError`` naming the extra to install."""
        if not self.available:
            raise CodecUnavailableError(self.name.lower(), _EXTRAS[self][0] or "")


_EXTRAS: dict[Codec, tuple[str | None, bool]] = {
    Codec.ZSTD: ("zstd", zstandard is not None),
    Codec.LZ4: ("lz4", lz4_frame is not None),
}

#: Levels used when none is given. A cache write is on the request path, so the fast
#: levels win: on a 10 MB numeric DataFrame zlib 1 compresses at ~90 MB/s against ~14 MB/s
#: for zlib's own default 6, for a 10% lower ratio (README, benchmark table).
DEFAULT_LEVELS = {
    Codec.NONE: 0,
    Codec.ZLIB: 1,
    Codec.GZIP: 1,
    Codec.LZMA: 1,
    Codec.ZSTD: 3,
    Codec.LZ4: 0,
}


def compress(codec: Codec, data: bytes, level: int) -> bytes:
    """Compress ``data``; every format carries its own checksum, so corruption is caught."""
    if codec is Codec.ZLIB:
        return zlib.compress(data, level)
    if codec is Codec.GZIP:
        return gzip.compress(data, compresslevel=level, mtime=0)
    if codec is Codec.LZMA:
        return lzma.compress(data, preset=level)
    if codec is Codec.ZSTD:
        codec.require()
        return bytes(zstandard.ZstdCompressor(level=level, write_checksum=True).compress(data))
    if codec is Codec.LZ4:
        codec.require()
        return bytes(lz4_frame.compress(data, compression_level=level, content_checksum=True))
    return data


class _Decompressor(Protocol):
    """The incremental interface shared by ``zlib``, ``lzma`` and ``lz4.frame``."""

    @property
    def eof(self) -> bool: ...
    @property
    def unused_data(self) -> bytes: ...
    def decompress(self, data: bytes, max_length: int = ..., /) -> bytes: ...


def decompress(codec: Codec, data: bytes, limit: int) -> bytes:
    """Decompress a whole stream, refusing output past ``limit`` bytes.

    At most ``limit + 1`` bytes are ever produced, so a decompression bomb costs memory
    near ``limit``, never its expanded size.
    """
    if codec is Codec.NONE:
        return data
    if not codec.available:
        raise SerializerError(
            f"value is compressed with {codec.name.lower()}, which is not installed here. "
            f"HINT: pip install 'aiocache-ext[{_EXTRAS[codec][0]}]' on every worker"
        )
    try:
        if codec is Codec.ZSTD:
            return _zstd(data, limit)
        return _stream(_decompressor(codec), data, limit, codec)
    except SerializerError:
        raise
    except Exception as exc:  # each library has its own error type; translate them all
        raise SerializerError(f"corrupt {codec.name.lower()} data: {exc}") from exc


def _decompressor(codec: Codec) -> _Decompressor:
    if codec is Codec.ZLIB:
        return zlib.decompressobj()
    if codec is Codec.GZIP:
        return zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    if codec is Codec.LZMA:
        return lzma.LZMADecompressor()
    result: _Decompressor = lz4_frame.LZ4FrameDecompressor()
    return result


def _stream(decompressor: _Decompressor, data: bytes, limit: int, codec: Codec) -> bytes:
    output = decompressor.decompress(data, limit + 1)
    if len(output) > limit:
        raise ValueTooLargeError(f"{codec.name.lower()} value expands past max_size={limit}")
    if not decompressor.eof:
        raise SerializerError(f"truncated {codec.name.lower()} data")
    if decompressor.unused_data:
        raise SerializerError(f"trailing bytes after the {codec.name.lower()} data")
    return output


def _zstd(data: bytes, limit: int) -> bytes:
    """One whole zstd frame, checksum verified, no trailing bytes, at most ``limit``
    bytes out. Our frames declare their size (zstd refuses to produce more than that);
    a frame without it (foreign) is first measured in bounded steps."""
    size = zstandard.get_frame_parameters(data).content_size
    if size == zstandard.CONTENTSIZE_UNKNOWN:
        size = _zstd_measure(data, limit)
    if size > limit:
        raise ValueTooLargeError(f"zstd value expands past max_size={limit}")
    decompressor = zstandard.ZstdDecompressor().decompressobj()
    output = bytes(decompressor.decompress(data))
    if not decompressor.eof:
        raise SerializerError("truncated zstd data")
    if decompressor.unused_data:
        raise SerializerError("trailing bytes after the zstd data")
    return output


def _zstd_measure(data: bytes, limit: int) -> int:
    """How many bytes a frame without a declared size makes, counting to ``limit + 1``."""
    reader: Any = zstandard.ZstdDecompressor().stream_reader(
        io.BytesIO(data), read_across_frames=False
    )
    total = 0
    while total <= limit:
        chunk = reader.read(min(limit + 1 - total, 1 << 20))
        if not chunk:
            break
        total += len(chunk)
    return total
