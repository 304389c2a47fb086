"""KeyBuilder as pure logic: binding, canonical values, ignored arguments, key shape."""

from __future__ import annotations

import collections
import dataclasses
import datetime
import enum
import os
import re
import subprocess
import sys
import textwrap
import types
import uuid
from typing import Any

import pytest
from fastapi import BackgroundTasks as FastAPIBackgroundTasks
from starlette.background import BackgroundTasks
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.websockets import WebSocket

from aiocache_ext import KeyBuilder, KeyBuilderError, UnstableKeyError, key_builder

VALID_KEY = re.compile(r"[\x21-\x7e]+")


def f(a: Any, b: Any = 2, *, c: Any = None) -> None: ...


def request_for(path: str = "/", headers: list[tuple[bytes, bytes]] | None = None) -> Request:
    scope = {"type": "http", "method": "GET", "path": path, "headers": headers or []}
    return Request(scope)


class Opaque:
    """Has only object's default repr: ``<Opaque object at 0x...>``."""


class Session(Opaque):
    """Stands for a db session type users add to ``ignore_types``."""


@dataclasses.dataclass
class Point:
    x: int
    tags: set[str]


class Color(enum.Enum):
    RED = "red"


def assert_valid(key: str) -> None:
    assert VALID_KEY.fullmatch(key), key
    assert len(key.encode()) <= 200


def test_positional_keyword_and_default_spellings_share_one_key() -> None:
    keys = {
        key_builder(f, 1),
        key_builder(f, 1, 2),
        key_builder(f, a=1, b=2),
        key_builder(f, 1, b=2),
    }
    assert len(keys) == 1
    assert key_builder(f, 1, 3) not in keys


def test_key_is_readable() -> None:
    assert key_builder(f, 1, c="x") == "tests.unit.test_keys:f(a=1,b=2,c='x')"


def test_values_of_different_types_give_different_keys() -> None:
    values = [1, "1", 1.0, True, b"1", [1], (1,), {1}, {1: 1}, None, "None", Color.RED, "a,b"]
    keys = {key_builder(f, value) for value in values}
    assert len(keys) == len(values)


def test_dict_and_set_order_does_not_matter() -> None:
    first = {"b": {3, 1, 2}, "a": [{"y": 1, "x": 2}]}
    second = {"a": [{"x": 2, "y": 1}], "b": {2, 3, 1}}
    assert key_builder(f, first) == key_builder(f, second)
    assert key_builder(f, frozenset("abc")) == key_builder(f, frozenset("cba"))
    assert key_builder(f, {"a": 1}) != key_builder(f, {"a": 2})


def test_var_keyword_and_var_positional() -> None:
    def g(*args: Any, **kwargs: Any) -> None: ...

    assert key_builder(g, 1, x=1, y=2) == key_builder(g, 1, y=2, x=1)
    assert key_builder(g, 1, 2) != key_builder(g, 2, 1)


def test_value_objects_with_their_own_text_are_accepted() -> None:
    when = datetime.datetime(2024, 1, 2, 3, 4, 5)
    ident = uuid.UUID(int=7)
    assert key_builder(f, when) != key_builder(f, when.replace(second=6))
    assert "UUID(" in key_builder(f, ident)
    assert key_builder(f, Point(1, {"b", "a"})) == key_builder(f, Point(1, {"a", "b"}))
    assert key_builder(f, collections.OrderedDict(a=1)) != key_builder(f, {"a": 1})


def test_same_name_in_two_modules_never_shares_a_key() -> None:
    functions = []
    for name in ("shop.views", "blog.views"):
        module = types.ModuleType(name)
        exec("def index(page=1):\n    return page\n", module.__dict__)
        functions.append(module.index)
    assert key_builder(functions[0]) != key_builder(functions[1])
    without_module = KeyBuilder(include_module=False)
    assert without_module(functions[0]) == without_module(functions[1]) == "index(page=1)"


def test_methods_are_told_apart_by_qualname() -> None:
    class A:
        def get(self, x: int) -> None: ...

    class B:
        def get(self, x: int) -> None: ...

    builder = KeyBuilder(ignore_args=("self",))
    assert builder(A.get, A(), 1) != builder(B.get, B(), 1)
    assert builder(A.get, A(), 1) == builder(A.get, A(), 1)


def test_starlette_and_fastapi_objects_are_left_out_by_type() -> None:
    def endpoint(item_id: int, req: Request, res: Response, tasks: BackgroundTasks) -> None: ...

    one = key_builder(endpoint, 5, request_for("/a"), Response(), BackgroundTasks())
    two = key_builder(endpoint, 5, request_for("/b"), JSONResponse({}), FastAPIBackgroundTasks())
    assert one == two
    assert one.endswith(".endpoint(item_id=5)")

    def ws_endpoint(ws: WebSocket, room: str) -> None: ...

    socket = WebSocket({"type": "websocket", "path": "/"}, receive=None, send=None)  # type: ignore[arg-type]
    assert key_builder(ws_endpoint, socket, "r1").endswith("ws_endpoint(room='r1')")


def test_request_and_response_are_left_out_by_name() -> None:
    def endpoint(request: Any, response: Any, q: str) -> None: ...

    assert key_builder(endpoint, Opaque(), Opaque(), "x").endswith("endpoint(q='x')")


def test_ignore_args_and_ignore_types_extend_the_defaults() -> None:
    def endpoint(request: Request, db: Session, user: Any, q: str) -> None: ...

    builder = KeyBuilder(ignore_args=["user"], ignore_types=[Session])
    key = builder(endpoint, request_for(), Session(), Opaque(), "x")
    assert key.endswith("endpoint(q='x')")


def test_prefix_is_kept_and_escaped() -> None:
    assert KeyBuilder(prefix="v2 api:")(f, 1).startswith("v2%20api:tests.unit")


def test_default_object_text_is_reported_not_cached() -> None:
    def load(db: Any, item_id: int) -> None: ...

    with pytest.raises(UnstableKeyError) as info:
        key_builder(load, Opaque(), 1)
    message = str(info.value)
    assert "load()" in message and "'db'" in message and "Opaque" in message
    assert "ignore_args=('db',)" in message and "__repr__" in message
    assert isinstance(info.value, KeyBuilderError) and isinstance(info.value, TypeError)


@pytest.mark.parametrize(
    "value",
    [Opaque(), [1, Opaque()], {"k": Opaque()}, lambda: None, Point(1, {Opaque()})],  # type: ignore[arg-type]
    ids=["object", "in-list", "in-dict", "function", "in-dataclass"],
)
def test_address_text_anywhere_in_an_argument_is_reported(value: Any) -> None:
    with pytest.raises(UnstableKeyError):
        key_builder(f, value)


def test_a_wrong_call_still_builds_a_key_so_the_function_raises_its_own_error() -> None:
    assert key_builder(f, 1, 2, 3, d=4) != key_builder(f, 1, 2, 3)


@pytest.mark.parametrize(
    "text",
    [
        "a b\tc\nd\re\x00f\x7f",
        "héllo wörld ✓ 🚀",
        "text/html, application/json;q=0.9",
        "\udcff lone surrogate",
        "%20 already escaped",
        "x" * 10_000,
        " \n" * 5_000 + "é" * 5_000,
    ],
    ids=["control", "non-ascii", "header", "surrogate", "percent", "10k", "10k-mixed"],
)
def test_any_argument_text_gives_a_valid_memcached_key(text: str) -> None:
    key = key_builder(f, text)
    assert_valid(key)
    assert key != key_builder(f, text + "!")


def test_escaping_keeps_distinct_texts_distinct() -> None:
    texts = ["a b", "a%20b", "a_b", "a\tb", "a\\tb", "é", "%C3%A9"]
    assert len({key_builder(f, t) for t in texts}) == len(texts)


def test_long_keys_keep_a_readable_prefix_and_end_in_a_digest() -> None:
    builder = KeyBuilder(max_length=80)
    long_one, long_two = builder(f, "q" * 500), builder(f, "q" * 499 + "r")
    assert len(long_one) == len(long_two) == 80
    assert long_one.startswith("tests.unit.test_keys:f(a='qqq")
    assert re.fullmatch(r".+#[0-9a-f]{32}", long_one)
    assert long_one != long_two
    assert builder(f, "short") == key_builder(f, "short")


@pytest.mark.parametrize("bad", [0, 10, 251, 1000])
def test_max_length_must_fit_memcached(bad: int) -> None:
    with pytest.raises(ValueError, match="max_length"):
        KeyBuilder(max_length=bad)


def test_keys_are_equal_across_processes_and_hash_seeds(tmp_path: Any) -> None:
    script = textwrap.dedent(
        """
        import datetime, enum
        from aiocache_ext import key_builder

        class Color(enum.Enum):
            RED = 1

        def report(filters, tags, *, since=None, **extra):
            pass

        calls = [
            ((), dict(filters={"b": 1, "a": {"x", "y", "z"}}, tags={"k1", "k2", "k3", "k4"})),
            (({"s": frozenset("abcdef")}, ("t",)), dict(since=datetime.date(2024, 1, 1))),
            (({1: "x", "y": 2}, [Color.RED]), dict(z=1.5, a=b"bytes")),
            (("é ✓" * 100, set(map(str, range(50)))), {}),
        ]
        for args, kwargs in calls:
            print(key_builder(report, *args, **kwargs))
        """
    )
    outputs = []
    for seed in ("1", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        result = subprocess.run(
            [sys.executable, "-c", script],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        outputs.append(result.stdout)
    assert outputs[0] == outputs[1]
    assert len(outputs[0].splitlines()) == 4


def test_negative_zero_keeps_its_own_key_whatever_was_seen_before() -> None:
    builder = KeyBuilder()

    def f(x: float) -> None: ...

    zero = builder(f, x=0.0)
    assert builder(f, x=-0.0) != zero
    assert builder(f, x=0.0) == zero


def test_the_injected_request_parameter_is_never_part_of_a_key() -> None:
    def report(year: int, aiocache_ext_request: object = None) -> None: ...

    def plain(year: int) -> None: ...

    assert key_builder(report, 2024) == key_builder(report, year=2024)
    assert "aiocache_ext_request" not in key_builder(report, 2024)
    assert (
        key_builder(report, 2024).split(":", 1)[1].replace("report", "plain")
        == (key_builder(plain, 2024).split(":", 1)[1])
    )
