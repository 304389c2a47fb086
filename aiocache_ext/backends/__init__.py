"""Cache backends: ``FallbackCache`` and the pure pieces it is made of."""

from .breaker import State as State
from .fallback import FallbackCache as FallbackCache
