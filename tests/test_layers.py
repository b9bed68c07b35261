"""The packages import only downward, and no package imports itself back through another.

Every ``import`` of the source tree is read with ``ast``, those inside functions too (a lazy import
is still a dependency). Run ``python tests/test_layers.py`` to print the package import graph.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

import interpretgan

#: The layers from the bottom up: a module may import from its own layer and the ones before it.
LAYERS = [
    "errors", "devices", "distributed", "io", "data", "config", "models", "attacks", "training", "explain",
    "diagnose", "baselines", "report", "pipeline", "pretrained", "cli",
]
#: The package's entry points, above everything.
ENTRY = {"__init__", "__main__"}
ROOT = Path(interpretgan.__file__).parent


def _layer(module: str) -> str:
    """``interpretgan.explain.loop`` -> ``explain``; ``interpretgan`` -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def import_edges() -> list[tuple[str, str, str]]:
    """``(importing layer, imported layer, "file:line")`` for every import of an interpretgan module."""
    edges = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT.parent).with_suffix("")
        source = _layer(".".join(rel.parts))
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.level:
                raise AssertionError(f"{path}:{node.lineno} uses a relative import; write it absolute")
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "interpretgan":
                # ``from interpretgan import data`` names a layer; ``import __version__`` the package root
                targets = ([a.name if (ROOT / a.name).exists() or (ROOT / f"{a.name}.py").exists() else "__init__"
                            for a in node.names] if node.module == "interpretgan" else [_layer(node.module)])
            elif isinstance(node, ast.Import):
                targets = [_layer(a.name) for a in node.names if a.name.split(".")[0] == "interpretgan"]
            else:
                continue
            edges += [(source, t, f"{rel}.py:{node.lineno}") for t in targets if t != source]
    return edges


def graph() -> dict[str, set[str]]:
    out: dict[str, set[str]] = defaultdict(set)
    for a, b, _ in import_edges():
        out[a].add(b)
    return out


def test_every_module_belongs_to_a_layer():
    found = {p.relative_to(ROOT).parts[0].removesuffix(".py") for p in ROOT.rglob("*.py")}
    assert found - ENTRY <= set(LAYERS), f"modules outside the declared layers: {sorted(found - ENTRY - set(LAYERS))}"
    assert not set(LAYERS) - found, f"declared layers with no module: {sorted(set(LAYERS) - found)}"


def test_imports_point_down():
    rank = {name: i for i, name in enumerate(LAYERS)}
    up = [f"{where}: {a} imports {b}" for a, b, where in import_edges()
          if a not in ENTRY and b in rank and rank[b] > rank[a]]
    unknown = [f"{where}: {a} imports {b}" for a, b, where in import_edges() if b not in rank and b not in ENTRY]
    assert not unknown, "imports of modules outside the layers:\n" + "\n".join(unknown)
    assert not up, "upward imports (a layer may use only those below it):\n" + "\n".join(up)


def test_no_package_cycle():
    g = graph()
    seen: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> None:
        seen[node] = 1
        for nxt in sorted(g.get(node, ())):
            if seen.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*path[path.index(nxt):], nxt]))
            if nxt not in seen:
                visit(nxt, [*path, nxt])
        seen[node] = 2

    for start in sorted(g):
        if start not in seen:
            visit(start, [start])


def test_the_check_sees_an_upward_import_inside_a_function(tmp_path, monkeypatch):
    """A lazy import inside a function is an edge too (the checks above would miss a cycle otherwise)."""
    pkg = tmp_path / "interpretgan"
    (pkg / "data").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "data" / "__init__.py").write_text("def f():\n    from interpretgan.report import build\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", pkg)
    assert ("data", "report", "interpretgan/data/__init__.py:2") in import_edges()


if __name__ == "__main__":
    for a, targets in sorted(graph().items(), key=lambda kv: LAYERS.index(kv[0]) if kv[0] in LAYERS else len(LAYERS)):
        print(f"{a:>10} -> {', '.join(sorted(targets, key=lambda t: LAYERS.index(t) if t in LAYERS else -1))}")
