"""Every Python example in the README runs as written."""

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

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def test_the_readme_has_examples() -> None:
    assert len(BLOCKS) >= 9


@pytest.mark.parametrize("source", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
async def test_readme_example_runs(source: str) -> None:
    saved = copy.deepcopy(caches.get_config())
    source = textwrap.dedent(source)  # blocks inside list items are indented
    code = compile(source, str(README), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    namespace: dict[str, object] = {"__name__": "readme_example", "__builtins__": builtins}
    try:
        result = types.FunctionType(code, namespace)()
        if result is not None:  # the block awaits something: run it to the end
            await result
    finally:
        caches.set_config(saved)
