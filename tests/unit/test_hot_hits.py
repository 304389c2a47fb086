"""Prepared hits as logic over what a backend holds (a dict here): answered while the
very same records are held, never past their time, and never keeping alive more than
their budget, nor any object memory keeps as it is."""

from __future__ import annotations

from typing import Any

from aiocache import Cache

from aiocache_ext.backends.adapter import MemoryBackend
from aiocache_ext.streaming.format import StaleValue
from aiocache_ext.streaming.hot import HotHits
from aiocache_ext.streaming.store import Held


def held(memory: Any, key: str, value: Any, token: Any = "t1") -> Held:
    memory._cache.update({key: value, "token": token})
    return Held(value, token, [key, "token"], [value, token])


def test_a_value_is_answered_while_the_same_records_are_held_and_fresh() -> None:
    memory = Cache(Cache.MEMORY)
    hot = HotHits(MemoryBackend(memory))
    size = 10  # records built at run time: equal constants may be one object
    hot.keep_value("k", held(memory, "b:k", "v" * size), until=100.0, value="value")
    assert hot.answer("k", 99.0) == "value"
    assert hot.answer("k", 100.0) is None  # its time is up
    memory._cache["b:k"] = "v" * size  # equal, but another record: written again
    assert hot.answer("k", 99.0) is None
    hot.keep_value("k", held(memory, "b:k", "w"), until=None, value="other")
    memory._cache["token"] = "t2"  # the namespace invalidated
    assert hot.answer("k", 99.0) is None


def test_an_object_memory_keeps_as_it_is_is_never_kept_alive_here() -> None:
    memory = Cache(Cache.MEMORY)
    hot = HotHits(MemoryBackend(memory))
    value = {"big": "object"}
    hot.keep_value("k", held(memory, "b:k", value), until=None, value=value)
    assert hot.answer("k", 0.0) is value
    assert hot._hits["k"].raws == []  # nothing of it held here
    replaced = {"other": "object"}
    memory._cache["b:k"] = replaced
    assert hot.answer("k", 0.0) is replaced  # whatever memory holds now, as a lookup finds
    memory._cache["b:k"] = StaleValue(b"{}", 0.0, 1.0, 0.0, 0.0)  # a record: the lookup's
    assert hot.answer("k", 0.0) is None
    del memory._cache["b:k"]
    assert hot.answer("k", 0.0) is None
    other = {"x": 1}  # not what the lookup gave (a serializer's own object): not prepared
    hot.keep_value("j", held(memory, "b:j", other), until=None, value=dict(other))
    assert hot.answer("j", 0.0) is None


def test_what_is_kept_alive_stays_within_the_budget() -> None:
    memory = Cache(Cache.MEMORY)
    hot = HotHits(MemoryBackend(memory), budget=1000)
    for index in range(100):
        record = f"{index:03d}" + "x" * 97  # 100 bytes, and the token's 2
        hot.keep_value(f"k{index}", held(memory, f"b:k{index}", record), until=None, value=index)
        assert hot._nbytes <= 1000
    assert hot.answer("k99", 0.0) == 99
    too_big = "x" * 2000
    hot.keep_value("big", held(memory, "b:big", too_big), until=None, value="big")
    assert hot.answer("big", 0.0) is None and hot._nbytes <= 1000
