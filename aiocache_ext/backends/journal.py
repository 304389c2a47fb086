"""What changed while the primary was away, so it can be undone there before it serves.

Every key written or deleted during an outage is recorded: the primary still holds its
older value, which must not be served after recovery. Clears are recorded by namespace.
The journal is bounded: past ``limit`` keys it gives up on single keys and asks for the
whole namespace (or the whole cache) to be cleared instead. Pure: no I/O.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

#: Stands for "the whole cache" among cleared namespaces.
EVERYTHING = object()


@dataclasses.dataclass
class Journal:
    limit: int = 10_000
    overflow_namespace: str | None = None
    keys: set[Any] = dataclasses.field(default_factory=set)
    namespaces: set[Any] = dataclasses.field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.keys or self.namespaces)

    def touched(self, keys: Iterable[Any]) -> None:
        """Keys written or deleted on the fallback: their primary copies are stale."""
        self.keys.update(keys)
        if len(self.keys) > self.limit:
            self.keys.clear()
            self.namespaces.add(self.overflow_namespace or EVERYTHING)

    def cleared(self, namespace: str | None) -> None:
        self.namespaces.add(namespace or EVERYTHING)

    def take(self) -> Journal:
        """Everything recorded so far, leaving this journal empty."""
        taken = Journal(self.limit, self.overflow_namespace, self.keys, self.namespaces)
        self.keys, self.namespaces = set(), set()
        return taken

    def put_back(self, taken: Journal) -> None:
        """A replay failed: keep what it did not apply."""
        self.keys |= taken.keys
        self.namespaces |= taken.namespaces
