"""aiocache_ext: response and value caching for FastAPI / Starlette, as an add-on over aiocache."""

import typing

from .backends import FallbackCache as FallbackCache
from .backends import NearCache as NearCache
from .backends import State as State
from .decorators import invalidate as invalidate
from .decorators import stream_cached as stream_cached
from .decorators import vary_on_headers as vary_on_headers
from .exceptions import AiocacheExtError as AiocacheExtError
from .exceptions import CodecUnavailableError as CodecUnavailableError
from .exceptions import KeyBuilderError as KeyBuilderError
from .exceptions import SerializerError as SerializerError
from .exceptions import SignatureError as SignatureError
from .exceptions import UnstableKeyError as UnstableKeyError
from .exceptions import ValueTooLargeError as ValueTooLargeError
from .keys import KeyBuilder as KeyBuilder
from .keys import key_builder as key_builder
from .serializers import Codec as Codec
from .serializers import CompressionSerializer as CompressionSerializer
from .ttl import ONE_DAY as ONE_DAY
from .ttl import ONE_HOUR as ONE_HOUR
from .ttl import ONE_MINUTE as ONE_MINUTE
from .ttl import ONE_MONTH as ONE_MONTH
from .ttl import ONE_SECOND as ONE_SECOND
from .ttl import ONE_WEEK as ONE_WEEK
from .ttl import ONE_YEAR as ONE_YEAR

__version__ = "0.1.0"

if typing.TYPE_CHECKING:  # imported on use (below); type checkers see the real names
    from .backends.redis import RedisCache as RedisCache
    from .backends.redis import sentinel_master as sentinel_master


def __getattr__(name: str) -> object:
    """``RedisCache`` and ``sentinel_master`` need the ``redis`` extra: imported on use."""
    if name in ("RedisCache", "sentinel_master"):
        from .backends import redis

        return getattr(redis, name)
    raise AttributeError(f"module 'aiocache_ext' has no attribute {name!r}")


__all__ = [
    "ONE_DAY",
    "ONE_HOUR",
    "ONE_MINUTE",
    "ONE_MONTH",
    "ONE_SECOND",
    "ONE_WEEK",
    "ONE_YEAR",
    "AiocacheExtError",
    "Codec",
    "CodecUnavailableError",
    "CompressionSerializer",
    "FallbackCache",
    "KeyBuilder",
    "KeyBuilderError",
    "NearCache",
    "RedisCache",
    "SerializerError",
    "SignatureError",
    "State",
    "UnstableKeyError",
    "ValueTooLargeError",
    "invalidate",
    "key_builder",
    "sentinel_master",
    "stream_cached",
    "vary_on_headers",
]
