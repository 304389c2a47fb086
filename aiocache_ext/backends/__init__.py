"""Cache backends: ``FallbackCache``, ``NearCache`` and the pieces they are made of."""

from .breaker import State as State
from .fallback import FallbackCache as FallbackCache
from .near import NearCache as NearCache
