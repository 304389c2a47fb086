"""Parameters added to an endpoint's visible signature for FastAPI.

FastAPI reads ``__signature__`` to decide what to inject. A decorator that needs the
``Request`` (or the sub-``Response`` whose headers FastAPI merges into the response it
builds) adds keyword-only parameters there, and pops them before calling the endpoint,
which never sees them. FastAPI passes the request to one parameter only, so when the
endpoint already declares one, the decorator reads that one instead of adding its own.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import Any

from starlette.requests import HTTPConnection


class EndpointSignature:
    """An endpoint's signature with annotations resolved, plus the parameters we add."""

    def __init__(self, func: Callable[..., Any]) -> None:
        signature = inspect.signature(func)
        try:  # string annotations resolve in the endpoint's module, not in ours
            hints = typing.get_type_hints(inspect.unwrap(func), include_extras=True)
        except Exception:  # unresolvable names: let FastAPI try, as without us
            hints = {}
        self._params = [
            p.replace(annotation=hints.get(p.name, p.annotation))
            for p in signature.parameters.values()
        ]
        self._added: list[inspect.Parameter] = []
        # FastAPI's response model comes from the return annotation: without it the
        # endpoint's result would be sent unfiltered (fields the model leaves out too).
        self._returns = hints.get("return", signature.return_annotation)

    def parameter_for(self, kind: type, fallback_name: str) -> tuple[str, bool]:
        """The name of the endpoint's parameter annotated ``kind`` (or a subclass), or
        ``fallback_name`` added as keyword-only; the flag says whether it was added."""
        for param in self._params:
            annotation = param.annotation
            if isinstance(annotation, type) and issubclass(annotation, kind):
                return param.name, False
        self._added.append(
            inspect.Parameter(
                fallback_name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=kind
            )
        )
        return fallback_name, True

    def signature(self) -> inspect.Signature:
        variadic = [p for p in self._params if p.kind is inspect.Parameter.VAR_KEYWORD]
        others = [p for p in self._params if p.kind is not inspect.Parameter.VAR_KEYWORD]
        return inspect.Signature(
            [*others, *self._added, *variadic], return_annotation=self._returns
        )


def take(kwargs: dict[str, Any], name: str, added: bool) -> Any:
    """The value of parameter ``name``: removed when we added it (the endpoint must not
    see it), left in place when it is the endpoint's own."""
    return kwargs.pop(name, None) if added else kwargs.get(name)


def take_request(
    args: tuple[Any, ...], kwargs: dict[str, Any], name: str, added: bool
) -> HTTPConnection | None:
    """The request: from its parameter (FastAPI), else the first argument of that type
    (plain Starlette routes call ``endpoint(request)``)."""
    found = kwargs.pop(name, None) if added else kwargs.get(name)  # ``take``, inlined: hot path
    if found is not None:
        return found  # type: ignore[no-any-return]
    return next((a for a in (*args, *kwargs.values()) if isinstance(a, HTTPConnection)), None)
