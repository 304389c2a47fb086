"""Keys as every backend takes them: escaped, bounded, fitted to a backend's limit.

Pure: no I/O. ``escape`` makes any text printable ASCII without spaces, reversibly
(``%XX``), so distinct texts stay distinct keys; ``shorten`` keeps a key's readable start
and replaces the rest by a digest of the whole; ``fit`` shortens a key only as much as a
backend's limit requires, given the bytes its namespace prefix adds.
"""

from __future__ import annotations

import hashlib
from urllib.parse import quote

#: memcached refuses keys over 250 bytes (Redis and memory take any length).
MEMCACHED_MAX_KEY_BYTES = 250
DIGEST_CHARS = 32  # blake2b-128 in hex

# Printable ASCII except "%" (the escape character) passes through; ``quote`` always
# keeps letters, digits and "_.-~". Everything else (space, control characters,
# non-ASCII) becomes %XX.
_SAFE = "".join(c for c in map(chr, range(0x21, 0x7F)) if not c.isalnum() and c != "%")


def escape(text: str) -> str:
    """Printable ASCII without spaces, reversibly (%XX): valid on every backend."""
    return quote(text, safe=_SAFE, errors="surrogatepass")


def shorten(key: str, max_length: int) -> str:
    """``key`` if it fits, else its readable start, ``#`` and a digest of all of it."""
    if len(key) <= max_length:
        return key
    digest = hashlib.blake2b(key.encode(errors="surrogatepass"), digest_size=DIGEST_CHARS // 2)
    return f"{key[: max(0, max_length - DIGEST_CHARS - 1)]}#{digest.hexdigest()}"


def fit(key: str, prefix_bytes: int, limit: int | None) -> str:
    """``key`` such that, after a namespace prefix of ``prefix_bytes``, it stays within
    ``limit`` bytes (``None``: no limit): as it is when it fits, else shortened (its
    start is kept only where it is ASCII, so that characters equal bytes)."""
    if limit is None:
        return key
    room = limit - prefix_bytes
    if len(key) <= room and len(key.encode(errors="surrogatepass")) <= room:
        return key
    if not key.isascii():
        key = escape(key)  # one byte per character, and still distinct
    return shorten(key, max(room, DIGEST_CHARS))
