"""Prepared hits as logic over what a backend holds (a dict here): answered while the
very same records are held, never past their time, and never keeping alive more than
their budget, nor any object whose size is unknown."""

from __future__ import annotations

from typing import Any

from aiocache import Cache

from aiocache_ext.backends.adapter import MemoryBackend
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


def test_an_object_of_unknown_size_is_never_kept() -> None:
    memory = Cache(Cache.MEMORY)
    hot = HotHits(MemoryBackend(memory))
    hot.keep_value("k", held(memory, "b:k", {"big": "object"}), until=None, value="value")
    assert hot.answer("k", 0.0) is None


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
