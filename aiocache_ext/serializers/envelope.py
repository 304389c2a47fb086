"""The bytes format of a stored value: a small self-describing header, then the payload.

::

    0xC1 'E' | version (1) | codec id (1) | flags (1) | size (4, big-endian) | [HMAC (32)] | payload

``size`` is the payload's length before compression, so truncation and lying streams are
caught and an oversized value is refused before any byte is decompressed. With ``SIGNED``,
an HMAC-SHA256 over header and payload follows the header. ``0xC1`` never starts pickle
(``0x80``), UTF-8 text (JSON), msgpack or zlib data, so values without the header (written
by aiocache's own serializers or by a bare ``zlib.compress``) are told apart for certain.
Pure: no I/O.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import struct

from ..exceptions import SerializerError, SignatureError, ValueTooLargeError
from .codecs import Codec, decompress

MAGIC = b"\xc1E"
VERSION = 1
_HEADER = struct.Struct(">2sBBBI")
_MAC_SIZE = hashlib.sha256().digest_size
MAX_SIZE = 2**32 - 1

SIGNED = 0x01
TEXT = 0x02  # the inner serializer produced str: decode as UTF-8 before loads()
_KNOWN_FLAGS = SIGNED | TEXT


@dataclasses.dataclass(frozen=True)
class Frame:
    """A stored value taken apart; ``payload`` is still compressed with ``codec``."""

    codec: Codec
    flags: int
    size: int
    payload: bytes

    @property
    def text(self) -> bool:
        return bool(self.flags & TEXT)


def pack(codec: Codec, payload: bytes, size: int, *, text: bool, secret: bytes | None) -> bytes:
    """Frame ``payload`` (``size`` bytes before compression), signed when ``secret`` is set."""
    if size > MAX_SIZE:
        raise ValueTooLargeError(f"value of {size} bytes exceeds the format's {MAX_SIZE} bytes")
    flags = (TEXT if text else 0) | (SIGNED if secret else 0)
    header = _HEADER.pack(MAGIC, VERSION, codec.value, flags, size)
    if not secret:
        return header + payload
    return header + _mac(secret, header, payload) + payload


def unpack(blob: bytes, secret: bytes | None) -> Frame | None:
    """The frame of ``blob``, or ``None`` when it has no header (a legacy value).

    With ``secret``, an unsigned, tampered or foreign-signed value raises
    ``SignatureError`` here, before anything is decompressed or deserialised.
    """
    if not blob.startswith(MAGIC):
        if secret:
            raise SignatureError("refused an unsigned value (no aiocache_ext header)")
        return None
    if len(blob) < _HEADER.size:
        raise SerializerError(f"truncated header ({len(blob)} bytes)")
    _, version, codec_id, flags, size = _HEADER.unpack_from(blob)
    if version != VERSION:
        raise SerializerError(f"value has format version {version}; this reader knows {VERSION}")
    if flags & ~_KNOWN_FLAGS:
        raise SerializerError(f"value has unknown flags {flags:#04x}")
    try:
        codec = Codec(codec_id)
    except ValueError:
        raise SerializerError(f"value names unknown codec id {codec_id}") from None
    start = _HEADER.size
    if flags & SIGNED:
        start += _MAC_SIZE
        if len(blob) < start:
            raise SerializerError("truncated signature")
        if secret:
            header, mac, payload = blob[: _HEADER.size], blob[_HEADER.size : start], blob[start:]
            if not hmac.compare_digest(mac, _mac(secret, header, payload)):
                raise SignatureError("refused a value whose signature does not match")
    elif secret:
        raise SignatureError("refused an unsigned value")
    return Frame(codec, flags, size, blob[start:])


def open_frame(frame: Frame, max_size: int) -> bytes:
    """The payload decompressed and checked against the size the header promised."""
    if frame.size > max_size:
        raise ValueTooLargeError(f"value of {frame.size} bytes is over max_size={max_size}")
    data = decompress(frame.codec, frame.payload, frame.size)
    if len(data) != frame.size:
        raise SerializerError(f"value is {len(data)} bytes, its header says {frame.size}")
    return data


def open_legacy(blob: bytes, max_size: int) -> bytes:
    """Bytes to hand the inner serializer for a value without a header.

    A value that starts like a zlib stream (RFC 1950 header check) and inflates cleanly is
    the seed's ``zlib.compress(pickle.dumps(v))``: it is inflated, within ``max_size``.
    Anything else is passed on as written, as by aiocache's own serializers.
    """
    if len(blob) >= 2 and blob[0] & 0x0F == 8 and blob[0] >> 4 <= 7 and _checks(blob):
        try:
            return decompress(Codec.ZLIB, blob, max_size)
        except ValueTooLargeError:
            raise
        except SerializerError:
            pass  # not zlib after all (text such as "80..." passes the 2-byte check)
    return blob


def _checks(blob: bytes) -> bool:
    return (blob[0] << 8 | blob[1]) % 31 == 0 and not blob[1] & 0x20  # no preset dictionary


def _mac(secret: bytes, header: bytes, payload: bytes) -> bytes:
    mac = hmac.new(secret, header, hashlib.sha256)
    mac.update(payload)
    return mac.digest()
