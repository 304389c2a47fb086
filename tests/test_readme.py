"""Every Python example in the README and in the docs runs as written."""

from __future__ import annotations

import ast
import builtins
import copy
import re
import textwrap
import types
from pathlib import Path

import pytest
from aiocache import caches

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").rglob("*.md"))]
EXAMPLES = [
    (page, block)
    for page in PAGES
    for block in re.findall(r"```python\n(.*?)```", page.read_text(), re.S)
]
BLOCKS = [block for page, block in EXAMPLES if page == README]


def test_the_readme_has_examples() -> None:
    assert len(BLOCKS) >= 9


@pytest.mark.parametrize(
    ("page", "source"),
    EXAMPLES,
    ids=[f"{page.relative_to(ROOT)}:{i}" for i, (page, _) in enumerate(EXAMPLES)],
)
async def test_example_runs(page: Path, source: str) -> None:
    saved = copy.deepcopy(caches.get_config())
    source = textwrap.dedent(source)  # blocks inside list items are indented
    code = compile(source, str(page), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    namespace: dict[str, object] = {"__name__": "readme_example", "__builtins__": builtins}
    try:
        result = types.FunctionType(code, namespace)()
        if result is not None:  # the block awaits something: run it to the end
            await result
    finally:
        caches.set_config(saved)
