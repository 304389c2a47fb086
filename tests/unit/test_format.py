"""The stored format as pure functions: records round trip, seals bind to their key,
malformed records are refused with SerializerError, segments are cut exactly."""

from __future__ import annotations

import pytest

from aiocache_ext.exceptions import SerializerError
from aiocache_ext.streaming.format import (
    Manifest,
    Segmenter,
    VaryIndex,
    is_record,
    is_segment_key,
    new_write_id,
    parse_record,
    segment_key,
    stored_headers,
)
from aiocache_ext.streaming.integrity import PLAIN, Integrity

SIGNED = Integrity(b"s3cret")


def manifest(**changes: object) -> Manifest:
    fields: dict[str, object] = dict(
        status=200, headers=((b"content-type", b"text/plain"),), size=10, segment_size=4,
        write_id="w1", etag='"e"', stored_at=1000.0, expires_at=1060.0,
        checks=("a", "b", "c"), token="t1",
    )  # fmt: skip
    fields.update(changes)
    return Manifest(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize("integrity", [PLAIN, SIGNED], ids=["plain", "signed"])
@pytest.mark.parametrize(
    "record",
    [manifest(), manifest(inline=b"0123456789", checks=()), manifest(size=0, checks=()),
     VaryIndex(("accept-language", "accept"))],
    ids=["segments", "inline", "empty", "vary-index"],
)  # fmt: skip
def test_records_round_trip(record: Manifest | VaryIndex, integrity: Integrity) -> None:
    stored = record.dumps("ns:key", integrity)
    assert is_record(stored) and is_record(stored.encode())
    assert parse_record(stored, "ns:key", integrity) == record
    assert parse_record(stored.encode(), "ns:key", integrity) == record


def test_a_sealed_record_is_refused_under_another_key_or_secret_or_unsigned() -> None:
    stored = manifest().dumps("ns:key", SIGNED)
    with pytest.raises(SerializerError, match="wrong signature"):
        parse_record(stored, "ns:other", SIGNED)
    with pytest.raises(SerializerError, match="wrong signature"):
        parse_record(stored, "ns:key", Integrity(b"other"))
    with pytest.raises(SerializerError, match="unsigned"):
        parse_record(manifest().dumps("ns:key"), "ns:key", SIGNED)
    assert parse_record(stored, "ns:key") == manifest()  # no secret here: read as it is


@pytest.mark.parametrize(
    ("stored", "reason"),
    [
        ("aiocache_ext.stream/1 {}", "another format"),
        ("aiocache_ext.stream/4 {not json", "corrupt stream record"),
        ("aiocache_ext.stream/4 [1]", "not an object"),
        ('aiocache_ext.stream/4 {"vary": []}', "corrupt vary index"),
        ('aiocache_ext.stream/4 {"status": 200}', "corrupt stream manifest"),
    ],
)
def test_malformed_records_are_refused(stored: str, reason: str) -> None:
    with pytest.raises(SerializerError, match=reason):
        parse_record(stored, "k")


@pytest.mark.parametrize(
    "broken",
    [manifest(size=-1), manifest(status=42), manifest(checks=("a",)),
     manifest(inline=b"short", checks=())],
    ids=["negative-size", "status", "checks", "inline-size"],
)  # fmt: skip
def test_impossible_manifests_are_refused(broken: Manifest) -> None:
    with pytest.raises(SerializerError, match="corrupt stream manifest"):
        parse_record(broken.dumps("k"), "k")


def test_replay_headers_add_etag_and_length_except_without_a_body() -> None:
    assert manifest().replay_headers == (
        (b"content-type", b"text/plain"), (b"etag", b'"e"'), (b"content-length", b"10"),
    )  # fmt: skip
    assert manifest(status=204, size=0, checks=()).replay_headers == (
        (b"content-type", b"text/plain"), (b"etag", b'"e"'),
    )  # fmt: skip
    own = manifest(headers=((b"ETag", b'"mine"'),))
    assert own.replay_headers == ((b"ETag", b'"mine"'), (b"content-length", b"10"))


def test_segment_lengths_and_keys() -> None:
    entry = manifest()
    assert entry.segments == 3
    assert [entry.segment_length(i) for i in range(3)] == [4, 4, 2]
    assert entry.segment_key("ns:key", 2) == "ns:key:{w1}:2"


def test_hop_by_hop_and_length_headers_are_not_stored() -> None:
    raw = [(b"Content-Length", b"5"), (b"content-type", b"a/b"), (b"Connection", b"close")]
    assert stored_headers(raw) == ((b"content-type", b"a/b"),)


@pytest.mark.parametrize(
    "chunks", [[b"abcdefghij"], [b"a"] * 10, [b"abc", b"", b"defgh", b"ij"], []]
)
def test_the_segmenter_cuts_exact_segments_whatever_the_chunks(chunks: list[bytes]) -> None:
    segmenter = Segmenter(4)
    out = [segment for chunk in chunks for segment in segmenter.feed(chunk)]
    last = segmenter.finish()
    whole = b"".join(chunks)
    assert all(len(s) == 4 for s in out)
    assert b"".join(out) + (last or b"") == whole
    assert last == (whole[len(out) * 4 :] or None)


def test_segment_keys_are_told_apart_from_other_keys() -> None:
    key = segment_key("app:/item|host:http://t", new_write_id(), 12)
    assert is_segment_key(key) and is_segment_key(key.encode())
    others = ["app:/item", "app:__aiocache_ext_token__", "app:x:{abc}:1",
              "app:x:{0123456789abcdef}:", key + ":extra", key[:-2]]  # fmt: skip
    assert not any(is_segment_key(k) for k in others)
