"""aiocache_ext: response and value caching for FastAPI / Starlette, as an add-on over aiocache."""

from .exceptions import AiocacheExtError as AiocacheExtError
from .exceptions import KeyBuilderError as KeyBuilderError
from .exceptions import UnstableKeyError as UnstableKeyError
from .keys import KeyBuilder as KeyBuilder
from .keys import key_builder as key_builder

__version__ = "0.1.0"

__all__ = [
    "AiocacheExtError",
    "KeyBuilder",
    "KeyBuilderError",
    "UnstableKeyError",
    "key_builder",
]
