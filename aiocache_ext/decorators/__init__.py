"""Decorators for routes and functions: aiocache hooks plus Starlette/FastAPI glue."""

from .vary_on_headers import vary_on_headers as vary_on_headers
