"""The HTTP rules as pure functions: table-driven, no ASGI, no backend."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from aiocache_ext.http.cache_control import CacheControl, parse_cache_control
from aiocache_ext.http.cache_status import Outcome, check_name, forwarded_because
from aiocache_ext.http.encoding import accepts, compressible
from aiocache_ext.http.etag import (
    body_digest,
    if_none_match_matches,
    not_modified_headers,
    strong_etag,
)
from aiocache_ext.http.policy import (
    SharedCacheRules as Rules,
)
from aiocache_ext.http.policy import (
    age,
    client_cache_control,
    request_policy,
    response_storable,
)
from aiocache_ext.http.request_headers import RequestHeaders, read_request_headers
from aiocache_ext.http.vary import merge_vary, normalize_header_value, parse_vary

BIG = "x" * 16_384


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, CacheControl()),
        ("", CacheControl()),
        ("no-store", CacheControl(no_store=True)),
        ("NO-CACHE", CacheControl(no_cache=True)),
        ("  max-age = 0 ", CacheControl(max_age=0)),
        ("max-age=60, no-cache", CacheControl(no_cache=True, max_age=60)),
        ("no-cache,max-age=60", CacheControl(no_cache=True, max_age=60)),
        ('max-age="30"', CacheControl(max_age=30)),
        ("max-age=abc", CacheControl(max_age=0)),
        ("max-age=-5", CacheControl(max_age=0)),
        ("max-age=", CacheControl(max_age=0)),
        ("max-age=١٢", CacheControl(max_age=0)),  # non-ASCII digits are not delta-seconds
        ("max-age=60, max-age=10", CacheControl(max_age=10)),
        ("max-age=99999999999999", CacheControl(max_age=2**31)),
        ('private="Set-Cookie, X-Foo", max-age=5', CacheControl(private=True, max_age=5)),
        ('no-cache="a,b,c"', CacheControl(no_cache=True)),
        ("public, s-maxage=20", CacheControl(public=True, s_maxage=20)),
        (",,, ,", CacheControl()),
        ("no-store;", CacheControl(extensions=frozenset({"no-store;"}))),
        ("stale-while-revalidate=5", CacheControl(stale_while_revalidate=5)),
        (
            "max-age=1, STALE-IF-ERROR=60, stale-if-error=30",
            CacheControl(max_age=1, stale_if_error=30),
        ),
        ("stale-while-revalidate=soon", CacheControl(stale_while_revalidate=0)),
        ("must-revalidate", CacheControl(must_revalidate=True)),
        ("proxy-revalidate, max-age=5", CacheControl(must_revalidate=True, max_age=5)),
        ("é=1, no-store", CacheControl(no_store=True, extensions=frozenset({"é"}))),
        (BIG, CacheControl(extensions=frozenset({BIG}))),
        (["max-age=60", "no-store"], CacheControl(no_store=True, max_age=60)),
        (["no-cache", "NO-CACHE"], CacheControl(no_cache=True)),
    ],
)
def test_parse_cache_control(header: object, expected: CacheControl) -> None:
    assert parse_cache_control(header) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("method", "headers", "read", "write", "reason"),
    [
        ("GET", {}, True, True, ""),
        ("get", {}, True, True, ""),
        ("HEAD", {}, True, True, ""),
        ("POST", {}, False, False, "method=POST"),
        ("DELETE", {}, False, False, "method=DELETE"),
        ("BREW", {}, False, False, "method=BREW"),
        ("GET", {"cache-control": ["no-store"]}, False, False, "request no-store"),
        ("GET", {"cache-control": ["max-age=10, NO-STORE"]}, False, False, "request no-store"),
        ("GET", {"cache-control": ["no-cache"]}, False, True, "request no-cache"),
        ("GET", {"cache-control": ["Max-Age = 0"]}, False, True, "request max-age=0"),
        ("GET", {"cache-control": ["max-age=abc"]}, False, True, "request max-age=0"),
        ("GET", {"cache-control": ["max-age=5"]}, True, True, ""),
        ("GET", {"cache-control": ["max-stale"]}, True, True, ""),
        ("GET", {"cache-control": [""]}, True, True, ""),
        ("GET", {"cache-control": [BIG]}, True, True, ""),
        ("GET", {"pragma": ["no-cache"]}, False, True, "request no-cache"),
        ("GET", {"pragma": ["no-cache"], "cache-control": ["max-age=5"]}, True, True, ""),
        ("GET", {"authorization": True}, False, False, "authorization"),
    ],
)
def test_request_policy(
    method: str, headers: dict[str, object], read: bool, write: bool, reason: str
) -> None:
    policy = request_policy(
        method,
        headers.get("cache-control", ()),  # type: ignore[arg-type]
        headers.get("pragma", ()),  # type: ignore[arg-type]
        authorization=bool(headers.get("authorization")),
    )
    assert (policy.read.ok, policy.write.ok) == (read, write)
    assert policy.read.reason == reason if not read else policy.write.reason == reason


def test_request_policy_options() -> None:
    assert request_policy("GET", authorization=True, rules=Rules(allow_authorized=True)).read
    assert request_policy("GET", authorization=True, vary=["Authorization"]).write
    kept = request_policy("GET", ["no-store"], rules=Rules(honor_no_store=False))
    assert not kept.read
    assert kept.write


@pytest.mark.parametrize(
    ("status", "cache_control", "vary", "set_cookie", "ok", "reason"),
    [
        (200, [], [], False, True, ""),
        (201, [], [], False, False, "status=201"),
        (404, [], [], False, False, "status=404"),
        (500, [], [], False, False, "status=500"),
        (200, ["no-store"], [], False, False, "response no-store"),
        (200, ["max-age=60, Private"], [], False, False, "response private"),
        (200, ['private="x"'], [], False, False, "response private"),
        (200, ["public"], [], True, False, "set-cookie"),
        (200, [], ["Accept, *"], False, False, "vary *"),
        (200, [], ["Accept"], False, True, ""),
        (200, ["max-age=abc"], [], False, False, "response max-age=0"),  # invalid: stale
        (200, ["max-age=60"], [], False, True, ""),
        (200, ["max-age=60, s-maxage=0"], [], False, False, "response max-age=0"),
        (200, ["s-maxage=5, max-age=0"], [], False, True, ""),
        (200, ["No-Cache"], [], False, False, "response no-cache"),
    ],
)
def test_response_storable(
    status: int, cache_control: list[str], vary: list[str], set_cookie: bool, ok: bool, reason: str
) -> None:
    decision = response_storable(status, cache_control, vary, set_cookie=set_cookie)
    assert (bool(decision), decision.reason) == (ok, reason)


def test_response_storable_options() -> None:
    assert response_storable(404, rules=Rules(statuses=frozenset({200, 404})))
    assert response_storable(200, ["private"], rules=Rules(allow_private=True))
    assert response_storable(200, set_cookie=True, rules=Rules(allow_set_cookie=True))


@pytest.mark.parametrize(
    ("existing", "names", "merged"),
    [
        (None, ["Accept"], "Accept"),
        ("", ["Accept"], "Accept"),
        ("accept", ["Accept"], "accept"),
        ("Origin", ["Accept", "Accept-Language"], "Origin, Accept, Accept-Language"),
        (["Origin", "Accept-Encoding, origin"], ["ACCEPT"], "Origin, Accept-Encoding, ACCEPT"),
        ("*", ["Accept"], "*"),
        (None, ["Accept", "accept"], "Accept"),
    ],
)
def test_merge_vary(existing: object, names: list[str], merged: str) -> None:
    assert merge_vary(existing, names) == merged  # type: ignore[arg-type]


def test_parse_vary() -> None:
    assert parse_vary(None) == []
    assert parse_vary(["Accept, ORIGIN", "accept"]) == ["accept", "origin"]


@pytest.mark.parametrize(
    ("name", "values", "normal"),
    [
        ("Accept", [], None),
        ("Accept", [""], ""),
        ("Accept", ["text/html,application/json"], "text/html,application/json"),
        ("accept", ["text/html , application/json"], "text/html,application/json"),
        ("ACCEPT", ["TEXT/HTML;  Q=0.9"], "text/html;q=0.9"),
        ("Accept", ["text/html", "application/json"], "text/html,application/json"),
        ("Accept-Language", ["en-US,fr;q=0.5"], "en-us,fr;q=0.5"),
        ("X-Tenant", ["Acme"], "Acme"),
        ("X-Tenant", ["  Acme  "], "Acme"),
        ("X-Tenant", ['"a, b" , c'], '"a, b",c'),
        ("X-Tenant", ["é ✓"], "é ✓"),
        ("X-Tenant", [BIG], BIG),
    ],
)
def test_normalize_header_value(name: str, values: list[str], normal: str | None) -> None:
    assert normalize_header_value(name, values) == normal


def test_case_is_kept_where_the_header_is_case_sensitive() -> None:
    assert normalize_header_value("X-Tenant", ["Acme"]) != normalize_header_value(
        "X-Tenant", ["acme"]
    )
    assert normalize_header_value("Accept", []) != normalize_header_value("Accept", [""])


ETAG = strong_etag(body_digest([b"hello"]))


@pytest.mark.parametrize(
    ("header", "matches"),
    [
        (None, False),
        ("", False),
        ("*", True),
        (ETAG, True),
        (f"W/{ETAG}", True),
        (f'"other", {ETAG}', True),
        (f'"other",W/{ETAG} ,"x"', True),
        ('"other"', False),
        (ETAG.strip('"'), False),  # unquoted: malformed, no 304
        (ETAG[:-1], False),
        ("W/", False),
        ("é", False),
        ('"' + "x" * 16_000 + '"', False),
    ],
)
def test_if_none_match(header: str | None, matches: bool) -> None:
    assert if_none_match_matches(header, ETAG) is matches


def test_etag_is_strong_quoted_and_content_addressed() -> None:
    assert ETAG.startswith('"')
    assert ETAG.endswith('"')
    assert not ETAG.startswith("W/")
    assert strong_etag(body_digest([b"hel", b"", b"lo"])) == ETAG  # chunking does not matter
    assert strong_etag(body_digest([b"hello!"])) != ETAG


def test_etag_is_equal_under_two_hash_seeds() -> None:
    script = (
        "from aiocache_ext.http.etag import body_digest, strong_etag\n"
        "print(strong_etag(body_digest([b'same body', bytes(range(256))])))\n"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", script],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
        for seed in ("0", "123")
    }
    assert len(outputs) == 1


def test_not_modified_headers() -> None:
    headers = {"ETag": ETAG, "Vary": "Accept", "Content-Type": "text/csv", "Content-Length": "5"}
    assert not_modified_headers(headers) == {"ETag": ETAG, "Vary": "Accept"}


@pytest.mark.parametrize(
    ("stored_at", "now", "seconds"), [(100.0, 100.0, 0), (100.0, 159.9, 59), (100.0, 90.0, 0)]
)
def test_age(stored_at: float, now: float, seconds: int) -> None:
    assert age(stored_at, now) == seconds


@pytest.mark.parametrize(
    ("endpoint_value", "remaining", "client_max_age", "sent"),
    [
        (None, 300.0, False, "no-cache"),
        (None, 300.0, True, "max-age=300"),
        (None, 0.4, True, "no-cache"),
        (None, None, True, "no-cache"),
        ("public, max-age=5", 300.0, True, None),
    ],
)
def test_client_cache_control(
    endpoint_value: str | None, remaining: float | None, client_max_age: bool, sent: str | None
) -> None:
    assert client_cache_control(endpoint_value, remaining, client_max_age=client_max_age) == sent


@pytest.mark.parametrize(
    ("values", "ok"),
    [
        ([], False),
        (["gzip"], True),
        (["GZIP"], True),
        (["gzip, deflate, br"], True),
        (["br", "gzip;q=0.5"], True),
        (["gzip;q=0"], False),
        (["gzip; q=0.0"], False),
        (["gzip;q=abc"], False),
        (["gzip;q=2"], False),
        (["*"], True),
        (["*;q=0"], False),
        (["*, gzip;q=0"], False),
        (["identity"], False),
        (["x-gzip"], False),
        (["gzip" + "," * 5000], True),
    ],
)
def test_accepts_gzip(values: list[str], ok: bool) -> None:
    assert accepts("gzip", values) is ok


@pytest.mark.parametrize(
    ("media_type", "ok"),
    [("text/html; charset=utf-8", True), ("text/event-stream", False),
     ("Text/Event-Stream; charset=utf-8", False), ("application/grpc+proto", False),
     ("", True)],
)  # fmt: skip
def test_compressible(media_type: str, ok: bool) -> None:
    assert compressible(media_type) is ok


def test_rules_refuse_a_bad_honor_option_at_decoration() -> None:
    with pytest.raises(TypeError, match="True, False or a callable"):
        Rules(honor_request_cache_control="yes")  # type: ignore[arg-type]


def test_request_headers_read_in_one_pass() -> None:
    raw = [
        (b"Host", b"shop.example"),
        (b"cache-control", b"no-cache"),
        (b"CACHE-CONTROL", b"max-age=0"),
        (b"pragma", b"no-cache"),
        (b"authorization", b"Bearer x"),
        (b"if-none-match", b'"a"'),
        (b"If-None-Match", b'W/"b"'),
        (b"accept-encoding", b"gzip"),
        (b"x-other", b"ignored"),
    ]
    assert read_request_headers(raw) == RequestHeaders(
        host=b"shop.example",
        cache_control=("no-cache", "max-age=0"),
        pragma=("no-cache",),
        authorization=True,
        if_none_match='"a", W/"b"',
        accept_encoding=("gzip",),
    )
    assert read_request_headers([]) == RequestHeaders(None, (), (), False, None, ())
    only = [(b"host", b"a.example"), (b"accept", b"*/*")]
    assert read_request_headers(only) == RequestHeaders(b"a.example", (), (), False, None, ())


def test_cache_status_members_follow_rfc_9211() -> None:
    assert Outcome().header("api", 41.9) == b"api; hit; ttl=41"
    assert Outcome().header("api", -0.2) == b"api; hit; ttl=-1"  # stale: negative
    stored = Outcome("miss", stored=True)
    assert stored.header("api", 60) == b"api; fwd=miss; ttl=60; stored"
    failed = Outcome("stale", fwd_status=503)
    assert failed.header("edge/1") == b"edge/1; fwd=stale; fwd-status=503"
    odd = Outcome("bypass", detail='say "hi" \\ bye\n')
    assert odd.header("api") == b'api; fwd=bypass; detail="say \\"hi\\" \\\\ bye?"'
    assert forwarded_because("method=POST") == Outcome("method")
    assert forwarded_because("request no-store") == Outcome("request", detail="request no-store")
    assert forwarded_because("authorization") == Outcome("bypass", detail="authorization")
    assert check_name("api-cache") == "api-cache"
    with pytest.raises(ValueError, match="HINT"):
        check_name("two words")
