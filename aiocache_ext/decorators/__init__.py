"""Decorators for routes and functions: aiocache hooks plus Starlette/FastAPI glue."""

from .invalidate import invalidate as invalidate
from .stream_cached import stream_cached as stream_cached
from .vary_on_headers import vary_on_headers as vary_on_headers
