"""CompressionSerializer, its envelope and codecs as pure logic (no backend)."""

from __future__ import annotations

import os
import pickle
import struct
import tracemalloc
import zlib
from pathlib import Path
from typing import Any

import pytest
from aiocache.serializers import (
    JsonSerializer,
    MsgPackSerializer,
    PickleSerializer,
    StringSerializer,
)

from aiocache_ext import (
    Codec,
    CodecUnavailableError,
    CompressionSerializer,
    SerializerError,
    SignatureError,
    ValueTooLargeError,
)
from aiocache_ext.serializers import codecs, envelope

CODECS = [c.name.lower() for c in Codec if c is not Codec.NONE]
VALUE = {"rows": [{"id": i, "name": f"row {i}", "score": i / 7} for i in range(500)]}
MiB = 1024 * 1024


def codec_of(blob: bytes) -> Codec:
    assert blob[:2] == envelope.MAGIC
    return Codec(blob[3])


@pytest.mark.parametrize("codec", CODECS)
def test_round_trip_and_any_configuration_reads_it(codec: str) -> None:
    writer = CompressionSerializer(codec=codec)
    blob = writer.dumps(VALUE)
    assert codec_of(blob) is Codec.parse(codec)
    assert len(blob) < len(pickle.dumps(VALUE)) / 2
    for reader_codec in CODECS:
        assert CompressionSerializer(codec=reader_codec, level=1).loads(blob) == VALUE


@pytest.mark.parametrize(
    "inner", [PickleSerializer(), JsonSerializer(), MsgPackSerializer(), "json", "msgpack"]
)
def test_inner_serializers(inner: Any) -> None:
    serializer = CompressionSerializer(inner=inner)
    assert serializer.loads(serializer.dumps(VALUE)) == VALUE


def test_string_inner_output_comes_back_as_str() -> None:
    serializer = CompressionSerializer(inner="string", min_size=0)
    assert serializer.loads(serializer.dumps("héllo " * 400)) == "héllo " * 400


def test_small_and_incompressible_payloads_are_stored_raw() -> None:
    serializer = CompressionSerializer(min_size=1024)
    assert codec_of(serializer.dumps({"a": 1})) is Codec.NONE
    noise = os.urandom(4096)
    assert codec_of(serializer.dumps(noise)) is Codec.NONE
    assert serializer.loads(serializer.dumps(noise)) == noise
    assert codec_of(CompressionSerializer(min_size=0).dumps("a" * 100)) is Codec.ZLIB


def test_options_accept_plain_strings_as_config_dicts_give_them() -> None:
    serializer = CompressionSerializer(
        inner="aiocache.serializers.JsonSerializer",
        codec="ZSTD",
        level="9",
        min_size="0",
        max_size="1048576",
    )
    assert (serializer.codec, serializer.level, serializer.min_size) == (Codec.ZSTD, 9, 0)
    assert serializer.max_size == MiB
    assert isinstance(serializer.inner, JsonSerializer)
    assert serializer.encoding is None


def test_bad_options_are_refused_clearly() -> None:
    with pytest.raises(ValueError, match="unknown codec 'brotli'; known codecs: zlib"):
        CompressionSerializer(codec="brotli")
    with pytest.raises(ValueError, match="unknown serializer"):
        CompressionSerializer(inner="yaml")
    with pytest.raises(TypeError, match="not a subclass of BaseSerializer"):
        CompressionSerializer(inner=dict)


def test_missing_extra_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    blob = CompressionSerializer(codec="zstd").dumps(VALUE)
    monkeypatch.setitem(codecs._EXTRAS, Codec.ZSTD, ("zstd", False))
    with pytest.raises(CodecUnavailableError, match=r"pip install 'aiocache-ext\[zstd\]'"):
        CompressionSerializer(codec="zstd")
    with pytest.raises(SerializerError, match=r"aiocache-ext\[zstd\]"):
        CompressionSerializer().loads(blob)


def test_legacy_values_are_read() -> None:
    serializer = CompressionSerializer()
    seed_value = zlib.compress(pickle.dumps(VALUE))
    assert serializer.loads(seed_value) == VALUE
    assert serializer.loads(PickleSerializer().dumps(VALUE)) == VALUE
    assert serializer.loads(pickle.dumps(VALUE, protocol=2)) == VALUE
    assert serializer.loads(None) is None


def test_text_that_looks_like_zlib_is_passed_on_as_written() -> None:
    assert envelope._checks(b"8O")  # passes RFC 1950's 2-byte header check, inflates to nothing
    assert CompressionSerializer(inner="string").loads(b"8O is text") == "8O is text"
    with pytest.raises(SerializerError):
        CompressionSerializer().loads(b"8O is no pickle")


@pytest.mark.parametrize("codec", CODECS)
def test_corrupt_and_truncated_values_raise_one_error_type(codec: str) -> None:
    blob = CompressionSerializer(codec=codec).dumps(VALUE)
    flipped = bytearray(blob)
    flipped[len(blob) // 2] ^= 0xFF
    cut = [blob[:-n] for n in (1, 2, 3, 4, 7)]  # inside a trailing checksum too
    for bad in (bytes(flipped), *cut, blob[:12], blob + b"trailing"):
        with pytest.raises(SerializerError):
            CompressionSerializer().loads(bad)


@pytest.mark.parametrize(
    "blob",
    [b"", b"\xc1", b"\xc1E", os.urandom(64), b"\xc1E\x09\x01\x00\x00\x00\x00\x05hello",
     b"\xc1E\x01\x63\x00\x00\x00\x00\x05hello", b"\xc1E\x01\x00\x80\x00\x00\x00\x05hello",
     b"garbage that is no pickle", "a str".encode("utf-16")],
    ids=["empty", "magic-byte", "magic", "random", "version", "codec-id", "flags", "text",
         "utf16"],
)  # fmt: skip
def test_foreign_bytes_raise_serializer_error(blob: bytes) -> None:
    with pytest.raises(SerializerError):
        CompressionSerializer().loads(blob)


def test_str_from_a_decoding_cache_is_explained() -> None:
    with pytest.raises(SerializerError, match="encoding at None"):
        CompressionSerializer().loads("text")  # type: ignore[arg-type]


def test_serializer_error_is_a_value_error() -> None:
    assert issubclass(SerializerError, ValueError)
    assert issubclass(SignatureError, SerializerError)
    assert issubclass(ValueTooLargeError, SerializerError)


class LeavesMarker:
    """Unpickling this creates ``path``: stands for running an attacker's code."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.mkdir, (str(self.path),))


def test_signed_values_round_trip_and_others_are_refused_before_unpickling(
    tmp_path: Path,
) -> None:
    marker = tmp_path / "pwned"
    signed = CompressionSerializer(secret="s3cret")
    assert signed.loads(signed.dumps(VALUE)) == VALUE
    assert CompressionSerializer().loads(signed.dumps(VALUE)) == VALUE  # readable without key

    evil = LeavesMarker(marker)
    attempts = {
        "plain pickle": pickle.dumps(evil),
        "seed zlib": zlib.compress(pickle.dumps(evil)),
        "unsigned envelope": CompressionSerializer().dumps(evil),
        "other key": CompressionSerializer(secret="other").dumps(evil),
    }
    genuine = bytearray(signed.dumps({"x": 1}))
    tampered_header = bytearray(genuine)
    tampered_header[4] ^= envelope.TEXT  # flip the text flag, keep the MAC
    attempts["tampered header"] = bytes(tampered_header)
    # A genuine header and MAC, with the payload swapped for the evil pickle.
    attempts["swapped payload"] = bytes(genuine[:41]) + pickle.dumps(evil)
    for name, blob in attempts.items():
        with pytest.raises(SignatureError):
            signed.loads(blob)
        assert not marker.exists(), name
    CompressionSerializer().loads(pickle.dumps(evil))
    assert marker.exists()  # the same bytes do run code when read without a secret


def zlib_bomb(size: int) -> bytes:
    compressor = zlib.compressobj(9)
    block = bytes(MiB)
    parts = [compressor.compress(block) for _ in range(size // MiB)]
    return b"".join(parts) + compressor.flush()


@pytest.fixture(scope="module")
def gib_of_zeros() -> bytes:
    return zlib_bomb(1024 * MiB)


def peak_while_refusing(blob: bytes, error: type[Exception]) -> int:
    """Peak traced memory while a ``max_size=10 MiB`` serializer refuses ``blob``."""
    serializer = CompressionSerializer(max_size=10 * MiB)
    tracemalloc.start()
    try:
        with pytest.raises(error):
            serializer.loads(blob)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_bare_zlib_bomb_is_refused_with_bounded_memory(gib_of_zeros: bytes) -> None:
    peak = peak_while_refusing(gib_of_zeros, ValueTooLargeError)
    assert peak < 3 * 10 * MiB + len(gib_of_zeros)


@pytest.mark.parametrize("claimed", [1024 * MiB, 100])
def test_a_framed_bomb_is_refused_whatever_size_it_claims(
    gib_of_zeros: bytes, claimed: int
) -> None:
    blob = struct.pack(">2sBBBI", envelope.MAGIC, 1, Codec.ZLIB.value, 0, claimed) + gib_of_zeros
    assert peak_while_refusing(blob, SerializerError) < 3 * 10 * MiB + len(blob)


@pytest.mark.parametrize("codec", CODECS)
def test_every_codec_stops_at_max_size(codec: str) -> None:
    blob = CompressionSerializer(codec=codec, inner="null").dumps(bytes(20 * MiB))
    with pytest.raises(ValueTooLargeError):
        CompressionSerializer(max_size=MiB).loads(blob)
    with pytest.raises(ValueTooLargeError):
        codecs.decompress(Codec.parse(codec), envelope.unpack(blob, None).payload, MiB)  # type: ignore[union-attr]


def test_a_text_inner_serializer_reads_values_written_without_the_header_as_text() -> None:
    """Switching a live cache from StringSerializer keeps its values' type."""
    serializer = CompressionSerializer(inner="string")
    assert serializer.loads(StringSerializer().dumps("plain").encode()) == "plain"
    assert serializer.loads(b"a1b2c3-redlock-token") == "a1b2c3-redlock-token"
    assert serializer.loads(serializer.dumps("framed")) == "framed"
