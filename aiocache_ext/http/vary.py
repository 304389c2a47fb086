"""``Vary``: merging field names, and normalising request header values so that
equivalent values share one cache entry (RFC 9110 Section 12.5.5)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from urllib.request import parse_http_list

#: Request headers whose values compare case-insensitively: media types, codings,
#: charsets and language tags (RFC 9110 Sections 8.3.1, 8.4.1, 12.5.3, 12.5.4).
CASE_INSENSITIVE = frozenset(
    {"accept", "accept-charset", "accept-encoding", "accept-language", "content-type"}
)
_PARAM_SPACE = re.compile(r"\s*([;=])\s*")


def parse_vary(values: str | Iterable[str] | None) -> list[str]:
    """Field names of ``Vary`` values, lower-cased, duplicates dropped, order kept."""
    return list(dict.fromkeys(item.lower() for item in _items(values)))


def merge_vary(existing: str | Iterable[str] | None, names: Sequence[str]) -> str:
    """A ``Vary`` value listing ``existing`` then ``names``, case-insensitively unique.

    ``*`` absorbs everything (RFC 9110 Section 12.5.5). Existing spellings are kept.
    """
    merged: dict[str, str] = {}
    for item in [*_items(existing), *names]:
        merged.setdefault(item.lower(), item)
    return "*" if "*" in merged else ", ".join(merged.values())


def normalize_header_value(name: str, values: Sequence[str]) -> str | None:
    """One canonical text for a request header's values, ``None`` when it is absent.

    Repeated lines are joined as one list (RFC 9110 Section 5.3); whitespace around
    commas is dropped, and around ``;``/``=`` too for the media-type style headers,
    whose values are also lower-cased. Quoted strings are kept as they are.
    """
    if not values:
        return None
    lower = name.lower()
    items: list[str] = []
    for value in values:
        for item in parse_http_list(value) if "," in value or '"' in value else [value.strip()]:
            if not item:
                continue
            if lower in CASE_INSENSITIVE:
                item = _PARAM_SPACE.sub(r"\1", item).lower()
            items.append(item)
    return ",".join(items)


def _items(values: str | Iterable[str] | None) -> list[str]:
    """Non-empty elements of one or several comma-separated header values."""
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    return [item for value in values for item in parse_http_list(value) if item]
