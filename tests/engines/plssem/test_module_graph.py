"""The engines' packages import each other's modules in one direction only and use public
names: an import cycle or a ``from x import _private`` is a layering fault, found here from the
source (every import statement counts, lazy and TYPE_CHECKING ones too)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ENGINES = Path(__file__).resolve().parents[3] / "src" / "qala" / "engines"


def _imports(package: str) -> dict[str, set[str]]:
    folder = ENGINES / package
    modules = {p.stem for p in folder.glob("*.py") if p.stem != "__init__"}
    prefix = f"qala.engines.{package}"
    graph: dict[str, set[str]] = {}
    for name in modules:
        found: set[str] = set()
        for node in ast.walk(ast.parse((folder / f"{name}.py").read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = f"{prefix}.{base}" if base else prefix
                targets = [base, *(f"{base}.{alias.name}" for alias in node.names)]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                continue
            found |= {t.rsplit(".", 1)[1] for t in targets if t.rsplit(".", 1)[0] == prefix}
        graph[name] = (found & modules) - {name}
    return graph


@pytest.mark.parametrize("package", ["plssem", "index"])
def test_modules_import_each_other_without_cycles(package: str) -> None:
    graph = _imports(package)
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        for nxt in sorted(graph[module]):
            assert nxt not in path, f"import cycle: {' -> '.join([*path, nxt])}"
            if nxt not in done:
                visit(nxt, [*path, nxt])
        done.add(module)

    for module in sorted(graph):
        visit(module, [module])
    assert len(done) == len(graph)


@pytest.mark.parametrize("package", ["plssem", "index"])
def test_modules_import_public_names_only(package: str) -> None:
    private = []
    for path in sorted((ENGINES / package).glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or "", *(alias.name for alias in node.names)]
                parts = [p for name in names for p in name.split(".")]
                if any(p.startswith("_") and not p.startswith("__") for p in parts):
                    private.append(f"{path.name}:{node.lineno}")
    assert private == []
