"""Objects from aiocache-style config: dotted class paths and ``{"class"/"cache": ...}`` dicts."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any


def import_object(path: str) -> Any:
    """``"package.module.name"`` -> the object, with a clear error for a bad path."""
    module, _, name = path.rpartition(".")
    if not module:
        raise ValueError(f"expected a dotted path such as 'aiocache.RedisCache', got {path!r}")
    found = getattr(importlib.import_module(module), name, None)
    if found is None:
        raise ValueError(f"{path!r} names nothing")
    return found


def import_class(path: str) -> type:
    """``"package.module.Name"`` -> the class, with a clear error for a bad path."""
    found = import_object(path)
    if not isinstance(found, type):
        raise ValueError(f"{path!r} does not name a class")
    return found


def build(spec: Any, base: type, class_key: str) -> Any:
    """An instance of ``base`` from an instance, a class, a dotted path, or a config dict
    whose ``class_key`` entry is the class and whose other entries are its arguments."""
    if isinstance(spec, base):
        return spec
    options: dict[str, Any] = {}
    if isinstance(spec, Mapping):
        if class_key not in spec:
            raise ValueError(f"config dict needs a {class_key!r} entry: {dict(spec)!r}")
        options = {k: v for k, v in spec.items() if k != class_key}
        spec = spec[class_key]
    cls = import_class(spec) if isinstance(spec, str) else spec
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise TypeError(f"{spec!r} is not a subclass of {base.__qualname__}")
    return cls(**options)
