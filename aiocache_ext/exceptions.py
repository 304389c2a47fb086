"""The one exception tree of aiocache_ext: every error names its cause and a fix."""

from __future__ import annotations


class AiocacheExtError(Exception):
    """Root of every error raised by aiocache_ext."""


class KeyBuilderError(AiocacheExtError, TypeError):
    """A cache key cannot be built from a call's arguments.

    A ``TypeError`` too, so code that guards a call against bad arguments keeps working.
    """


class UnstableKeyError(KeyBuilderError):
    """An argument's only text form is per-object (``<Foo object at 0x...>``).

    Such an argument would give every call a new key: a cache that never hits and
    grows without bound. It is refused instead of being cached silently.
    """

    def __init__(self, func_name: str, arg_name: str, arg_type: type) -> None:
        self.func_name = func_name
        self.arg_name = arg_name
        self.arg_type = arg_type
        type_name = f"{arg_type.__module__}.{arg_type.__qualname__}"
        super().__init__(
            f"cannot build a stable cache key for {func_name}(): argument {arg_name!r} "
            f"of type {type_name} has no stable text form (its repr names a memory "
            f"address, so every call would get a new key). HINT: leave it out of the key "
            f"with KeyBuilder(ignore_args=({arg_name!r},)) or "
            f"KeyBuilder(ignore_types=({arg_type.__qualname__},)), or give "
            f"{arg_type.__qualname__} a __repr__ or __str__ that depends only on its value."
        )


class SerializerError(AiocacheExtError, ValueError):
    """A stored value cannot be read back: corrupt, truncated, foreign, too large or
    wrongly signed. aiocache's ``cached`` treats it as a miss.
    """


class SignatureError(SerializerError):
    """With ``secret=``: the value is unsigned, tampered with, or signed with another key.

    Raised before any byte of the value is decompressed or unpickled.
    """


class ValueTooLargeError(SerializerError):
    """The value would decompress past ``max_size`` (a decompression bomb, or a limit set
    too low for the data)."""


class CodecUnavailableError(AiocacheExtError, ImportError):
    """A codec whose extra is not installed was asked for."""

    def __init__(self, codec: str, extra: str) -> None:
        self.codec = codec
        self.extra = extra
        super().__init__(
            f"codec {codec!r} needs an optional dependency. "
            f"HINT: pip install 'aiocache-ext[{extra}]'"
        )
