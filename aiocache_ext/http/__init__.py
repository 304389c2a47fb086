"""HTTP caching rules as pure functions over header strings: no ASGI, no backend."""
