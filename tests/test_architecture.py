"""Imports point one way (models <- listener <- responders <- openear; sandbox stands alone) and never in a circle.

Every .py file of the five packages is parsed, and every import counts: top-level ones, those inside
functions, under `if TYPE_CHECKING:` or in try/except, and `importlib.import_module("literal")` calls.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("models", "listener", "responders", "openear", "sandbox")
# what each layer must not import; openear is the composition root (and runs the sandbox demo): anything
MAY_NOT_IMPORT: dict[str, frozenset[str]] = {
    "models": frozenset({"listener", "responders", "openear", "sandbox"}),
    "listener": frozenset({"responders", "openear", "sandbox"}),
    "responders": frozenset({"openear", "sandbox"}),
    "sandbox": frozenset({"models", "listener", "responders", "openear"}),
    "openear": frozenset(),
}


@dataclass(frozen=True)
class Module:
    name: str
    path: Path
    is_package: bool  # an __init__.py: the package's own module


@dataclass(frozen=True)
class Edge:
    source: str
    target: str  # the module imported (`from pkg import name`: pkg.name when that is a module, else pkg)
    path: Path
    line: int

    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def discover(root: Path = ROOT) -> dict[str, Module]:
    modules: dict[str, Module] = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            is_package = parts[-1] == "__init__"
            if is_package:
                parts.pop()
            name = ".".join(parts)
            modules[name] = Module(name, path, is_package)
    return modules


def _base(module: Module, node: ast.ImportFrom) -> str:
    """The absolute module an ImportFrom names (relative imports resolved against the importer's package)."""
    if not node.level:
        return node.module or ""
    package = module.name if module.is_package else module.name.rpartition(".")[0]
    for _ in range(node.level - 1):
        package = package.rpartition(".")[0]
    return f"{package}.{node.module}" if node.module else package


def _imported_names(module: Module, tree: ast.AST, modules: dict[str, Module]) -> Iterator[tuple[str, int]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = _base(module, node)
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                yield (submodule if submodule in modules else base), node.lineno
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            if called in ("import_module", "__import__") and not node.args[0].value.startswith("."):
                yield node.args[0].value, node.lineno


def imports_of(module: Module, modules: dict[str, Module], source: str | None = None) -> list[Edge]:
    """Every import of `module` that names one of the five packages (third-party ones are left out)."""
    text = module.path.read_text(encoding="utf-8") if source is None else source
    tree = ast.parse(text, filename=str(module.path))
    edges = {Edge(module.name, target, module.path, line) for target, line in _imported_names(module, tree, modules)
             if target.split(".")[0] in PACKAGES}
    return sorted(edges, key=lambda e: (e.line, e.target))


def all_edges(modules: dict[str, Module]) -> list[Edge]:
    return [edge for module in modules.values() for edge in imports_of(module, modules)]


def layer_violations(edges: Iterable[Edge]) -> list[str]:
    found = []
    for edge in edges:
        source_layer, target_layer = edge.source.split(".")[0], edge.target.split(".")[0]
        if target_layer in MAY_NOT_IMPORT[source_layer]:
            found.append(f"{edge.where()}: {edge.source} imports {edge.target} ({source_layer} may not import "
                         f"{target_layer})")
    return found


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative; components of more than one module, each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(sorted(component))
    return sorted(components)


def cycles(edges: list[Edge], modules: dict[str, Module]) -> list[str]:
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for edge in edges:
        if edge.target in modules and edge.target != edge.source:
            graph[edge.source].add(edge.target)
    found = []
    for component in strongly_connected(graph):
        members = set(component)
        inside = [f"    {edge.where()}: {edge.source} -> {edge.target}" for edge in edges
                  if edge.source in members and edge.target in members and edge.source != edge.target]
        found.append(f"cycle of {len(component)} modules: {', '.join(component)}\n" + "\n".join(inside))
    return found


def test_imports_point_one_way() -> None:
    violations = layer_violations(all_edges(discover()))
    assert not violations, "imports against the layer direction:\n" + "\n".join(violations)


def test_no_import_cycles() -> None:
    modules = discover()
    found = cycles(all_edges(modules), modules)
    assert not found, "import cycles between modules:\n" + "\n".join(found)


def test_the_graph_builder_sees_real_and_hidden_imports() -> None:
    """Not vacuous: a known edge is found, and so are imports in functions, under TYPE_CHECKING, relative ones."""
    modules = discover()
    assert {"models.orm", "listener.poller", "openear.cli", "sandbox.x_api", "listener.platforms"} <= set(modules)
    assert any(e.target == "models.orm" for e in imports_of(modules["listener.poller"], modules))

    probe = Module("listener.platforms.probe", ROOT / "listener" / "platforms" / "probe.py", is_package=False)
    source = (
        "from typing import TYPE_CHECKING\n"
        "import numpy\n"
        "if TYPE_CHECKING:\n"
        "    from responders import dispatch\n"
        "def later():\n"
        "    from ..poller import Poller\n"
        "    from . import base\n"
        "    import openear.cli as cli\n"
        "    return importlib.import_module('sandbox.x_api')\n"
        "from models.orm import Mention\n"
    )
    found = {(e.target, e.line) for e in imports_of(probe, modules, source)}
    assert found == {("responders.dispatch", 4), ("listener.poller", 6), ("listener.platforms.base", 7),
                     ("openear.cli", 8), ("sandbox.x_api", 9), ("models.orm", 10)}
    edges = imports_of(probe, modules, source)
    assert [v.split(": ", 1)[0] for v in layer_violations(edges)] == [
        "listener/platforms/probe.py:4", "listener/platforms/probe.py:8", "listener/platforms/probe.py:9"]


def test_the_cycle_finder_names_each_cycle_with_its_imports() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"e"}, "e": {"d", "f"}, "f": set(), "g": {"g"}}
    assert strongly_connected(graph) == [["a", "b", "c"], ["d", "e"]]
    modules = {name: Module(name, ROOT / "models" / f"{name}.py", False) for name in ("models.x", "models.y")}
    edges = [Edge("models.x", "models.y", ROOT / "models" / "x.py", 3),
             Edge("models.y", "models.x", ROOT / "models" / "y.py", 7)]
    [message] = cycles(edges, modules)
    assert "models.x, models.y" in message and "models/x.py:3" in message and "models/y.py:7" in message
