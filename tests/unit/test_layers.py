"""The package's layout holds: pure modules (HTTP rules, keys, the stored format, the
breaker's state machine) import only pure modules, and no two modules import each other
in a cycle. Read from the source with ``ast``; imports under ``TYPE_CHECKING`` do not count."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "aiocache_ext"
PURE = {
    "aiocache_ext.exceptions", "aiocache_ext.ttl", "aiocache_ext.keys",
    "aiocache_ext.key_parts", "aiocache_ext.backend_keys",
    "aiocache_ext.http.cache_control", "aiocache_ext.http.encoding", "aiocache_ext.http.etag",
    "aiocache_ext.http.policy", "aiocache_ext.http.request_headers", "aiocache_ext.http.vary",
    "aiocache_ext.http.staleness",
    "aiocache_ext.streaming.format", "aiocache_ext.streaming.integrity",
    "aiocache_ext.backends.breaker", "aiocache_ext.backends.journal",
    "aiocache_ext.backends.near_tier",
    "aiocache_ext.serializers.codecs", "aiocache_ext.serializers.envelope",
}  # fmt: skip


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """The aiocache_ext modules ``path`` imports at run time."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    tree = ast.parse(path.read_text())
    skipped = {
        id(node)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
        for node in ast.walk(block)
    }
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped or not isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("aiocache_ext")}
            continue
        base = node.module or ""
        if node.level:
            anchor = package.split(".")
            anchor = anchor[: len(anchor) - node.level + 1]
            base = ".".join([*anchor, *([base] if base else [])])
        if base.startswith("aiocache_ext"):
            modules = {f"{base}.{a.name}" for a in node.names}
            found |= {m for m in modules if is_module(m)}
            found |= {base} if not modules & found else set()
    return found - {name}


def is_module(name: str) -> bool:
    path = PACKAGE.parent / name.replace(".", "/")
    return path.with_suffix(".py").exists() or path.is_dir()


GRAPH = {module_name(p): imports(p) for p in sorted(PACKAGE.rglob("*.py"))}


def test_pure_modules_import_only_pure_modules() -> None:
    assert set(GRAPH) >= PURE
    impure = {m: sorted(GRAPH[m] - PURE) for m in PURE if GRAPH[m] - PURE}
    assert impure == {}


def test_no_import_cycles_between_modules() -> None:
    """Edges into a package's ``__init__`` (which only re-exports) are left out."""
    packages = {m for m in GRAPH if (PACKAGE / ".." / m.replace(".", "/")).is_dir()}
    edges = {m: {t for t in targets if t in GRAPH and t not in packages}
             for m, targets in GRAPH.items()}  # fmt: skip
    cycles: list[list[str]] = []
    state: dict[str, str] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for target in sorted(edges[module]):
            if state.get(target) == "open":
                cycles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target, [*path, target])
        state[module] = "done"

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])
    assert cycles == []
