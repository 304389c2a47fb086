"""What makes a replay trustworthy: per-segment checks and sealed stored records. Pure.

Every segment's check value is listed in its manifest, so a segment swapped with another,
replaced by other bytes of the same length, or left over from another write is refused
before it is sent. Without a secret the check is CRC-32 (it catches accidents); with a
secret it is SHA-256 (collision resistant) and every manifest is sealed with HMAC-SHA256
over the backend key it is stored under, so a record that someone without the secret
wrote, or copied from another key, is never served.

CRC-32 comes from ``zlib-ng`` when the ``fast`` extra is installed (~60 GB/s here, so
the check costs a few percent of replay speed) and from the standard ``zlib`` otherwise
(~7 GB/s: about a quarter of a 2-3 GB/s replay). Both give the same values, so workers
with and without the extra read each other's entries.
"""

from __future__ import annotations

import hashlib
import hmac
import zlib
from typing import Callable

from ..exceptions import SerializerError

#: The CRC-32 in use, and where it comes from (for benchmarks and reports).
crc32: Callable[[bytes], int]
try:
    from zlib_ng.zlib_ng import crc32

    CRC32_SOURCE = "zlib-ng"
except ImportError:  # the ``fast`` extra is not installed
    crc32 = zlib.crc32
    CRC32_SOURCE = "zlib"

_MAC_PREFIX = "mac="
_MAC_CHARS = 64


class Integrity:
    """Check values and seals for one ``stream_cached`` (one optional secret)."""

    __slots__ = ("secret",)

    def __init__(self, secret: bytes | None = None) -> None:
        self.secret = secret

    def __repr__(self) -> str:
        return f"Integrity(signed={self.secret is not None})"

    def segment_check(self, data: bytes) -> str:
        """The value a segment must match to be replayed."""
        if self.secret is None:
            return f"{crc32(data):08x}"
        return hashlib.sha256(data).hexdigest()[:32]

    def seal(self, key: str | bytes, text: str) -> str:
        """``text`` as stored under ``key``: as it is, or preceded by its MAC."""
        if self.secret is None:
            return text
        return f"{_MAC_PREFIX}{self._mac(key, text)} {text}"

    def unseal(self, key: str | bytes, stored: str) -> str:
        """The text of a record read under ``key``; ``SerializerError`` when a secret is
        set and the record is unsigned, signed with another secret, or moved."""
        mac = None
        if stored.startswith(_MAC_PREFIX):
            mac, _, stored = stored[len(_MAC_PREFIX) :].partition(" ")
        if self.secret is None:
            return stored  # no secret here: a signed record is read as it is
        if mac is None or len(mac) != _MAC_CHARS:
            raise SerializerError("unsigned stream record refused: this route has a secret")
        if not hmac.compare_digest(mac, self._mac(key, stored)):
            raise SerializerError("stream record with a wrong signature refused")
        return stored

    def _mac(self, key: str | bytes, text: str) -> str:
        assert self.secret is not None
        if isinstance(key, str):  # memcached keys are built as bytes, others as str
            key = key.encode("utf-8", "surrogatepass")
        message = key + b"\0" + text.encode("latin-1")
        return hmac.new(self.secret, message, hashlib.sha256).hexdigest()


PLAIN = Integrity()
