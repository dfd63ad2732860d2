"""The house keeps its shape: imports point down the layers, and nothing imports in a circle.

docs/architecture.md draws the layers; this test is what keeps that drawing true. It reads
every module of the four packages with ``ast`` (nothing is imported, so it is fast and sees
imports under ``TYPE_CHECKING`` and inside functions too) and fails on:

- an import from a lower layer into a higher one (``live.media`` reaching for the origin, the
  product importing its twin or load tool, the twin importing ``loadgen``);
- a cycle between modules, or between packages (``live.chat`` <-> ``live.api`` say), even when
  each single import points sideways within a layer.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"live": ROOT / "platform" / "live", "twin": ROOT / "twin",
            "loadgen": ROOT / "loadgen", "reports": ROOT / "reports"}

#: Each layer may import its own and those below it (docs/architecture.md, "Layers").
LAYERS: tuple[tuple[str, ...], ...] = (
    ("live.media",),
    ("live.ingest", "live.transcode", "live.package"),
    ("live.origin", "live.api", "live.chat", "live.selftest", "live.webrtc", "live.cdn", "live.dvr",
     "live.commerce"),
    ("live",),  # the platform process: the modules directly under live/ (serve, cli, demo, ...)
    ("twin",),
    ("loadgen",),
    ("reports",),
    ("twin.cli", "loadgen.cli"),
)


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for top, root in PACKAGES.items():
        for path in sorted(root.rglob("*.py")):
            parts = [top, *path.relative_to(root).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imported_names(module: str, path: Path) -> Iterator[str]:
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            yield target
            yield from (f"{target}.{alias.name}" for alias in node.names)


def _resolve(name: str) -> str | None:
    """The project module ``name`` refers to (an attribute import resolves to its module)."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def _edges() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        targets = {_resolve(name) for name in _imported_names(module, path)}
        edges[module] = {t for t in targets if t and t != module and not module.startswith(t + ".")}
    return edges


EDGES = _edges()


def unit_of(module: str) -> str:
    """The layer unit a module belongs to: the longest LAYERS entry that names it or a parent."""
    units = [u for layer in LAYERS for u in layer if module == u or module.startswith(u + ".")]
    assert units, f"{module} is in no layer: add its package to LAYERS and docs/architecture.md"
    return max(units, key=len)


def layer_of(module: str) -> int:
    unit = unit_of(module)
    return next(i for i, layer in enumerate(LAYERS) if unit in layer)


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a path (first node repeated at the end), or None."""
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_every_module_is_in_a_layer() -> None:
    for module in MODULES:
        layer_of(module)


def test_imports_point_down_the_layers() -> None:
    upward = [
        f"{src} (layer {layer_of(src)}) imports {dst} (layer {layer_of(dst)})"
        for src, targets in EDGES.items() for dst in sorted(targets)
        if layer_of(dst) > layer_of(src)
    ]
    assert not upward, "imports that point up the layers:\n" + "\n".join(upward)


def test_no_cycle_between_modules() -> None:
    cycle = _cycle(EDGES)
    assert cycle is None, "module import cycle: " + " -> ".join(cycle or [])


def test_no_cycle_between_packages() -> None:
    graph: dict[str, set[str]] = {}
    for src, targets in EDGES.items():
        graph.setdefault(unit_of(src), set()).update(
            unit_of(dst) for dst in targets if unit_of(dst) != unit_of(src))
    cycle = _cycle(graph)
    assert cycle is None, "package import cycle: " + " -> ".join(cycle or [])


def test_every_module_says_why_it_exists() -> None:
    missing = [name for name, path in MODULES.items()
               if path.stat().st_size and ast.get_docstring(ast.parse(path.read_text())) is None]
    assert not missing, "modules without a docstring: " + ", ".join(missing)


@pytest.mark.parametrize(("graph", "has_cycle"), [
    ({"a": {"b"}, "b": {"c"}, "c": set()}, False),
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, True),
    ({"a": {"a"}}, True),
])
def test_the_cycle_finder_finds_cycles(graph: dict[str, set[str]], has_cycle: bool) -> None:
    assert (_cycle(graph) is not None) is has_cycle


def test_an_upward_import_is_reported() -> None:
    assert layer_of("live.media.flv") < layer_of("live.origin.store") < layer_of("live.serve")
    assert layer_of("live.cli") < layer_of("twin.model") < layer_of("loadgen.realrun")
    assert layer_of("reports.html") < layer_of("twin.cli")
