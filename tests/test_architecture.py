"""The layout rules a reviewer would otherwise check by eye, checked on the source text.

- Shells stay thin: no function over 80 lines in the API, web and CLI shells or in any module that
  builds FastAPI routes, and no route defined inside a factory function (routes are module-level,
  so a newcomer finds one by its path).
- Modules use each other's public names only (a private module of the importer's own package, like
  ``plssem._kernel``, is the package's business and allowed).
- The module import graph has no cycles. Imports inside functions count too: deferring an import
  hides a cycle from Python, not from the reader. ``TYPE_CHECKING`` blocks do not count, nor a
  module's imports from its own ancestor package (how packages re-export their modules).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "qala"
MAX_SHELL_FUNCTION_LINES = 80
ROUTE_DECORATORS = {"get", "post", "put", "patch", "delete", "head", "options", "api_route"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def modules() -> dict[str, tuple[Path, ast.Module]]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        found[module_name(path)] = (path, ast.parse(path.read_text(encoding="utf-8")))
    return found


def is_shell(name: str, tree: ast.Module) -> bool:
    if name.startswith(("qala.api", "qala.web", "qala.cli")):
        return True
    return any(
        isinstance(node, ast.ImportFrom)
        and node.module == "fastapi"
        and any(alias.name == "APIRouter" for alias in node.names)
        for node in ast.walk(tree)
    )


def functions(tree: ast.AST) -> Iterator[ast.FunctionDef | ast.AsyncFunctionDef]:
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node


def test_shell_functions_are_short() -> None:
    long = [
        f"{path.relative_to(SRC)}:{node.lineno} {node.name} ({lines} lines)"
        for name, (path, tree) in modules().items()
        if is_shell(name, tree)
        for node in functions(tree)
        if (lines := (node.end_lineno or node.lineno) - node.lineno + 1) > MAX_SHELL_FUNCTION_LINES
    ]
    assert not long, "shell functions over 80 lines:\n" + "\n".join(long)


def _is_route_decorator(decorator: ast.expr) -> bool:
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    return isinstance(target, ast.Attribute) and target.attr in ROUTE_DECORATORS


def test_routes_are_module_level() -> None:
    nested = [
        f"{path.relative_to(SRC)}:{inner.lineno} {inner.name} (inside {outer.name})"
        for _, (path, tree) in modules().items()
        for outer in functions(tree)
        for inner in functions(outer)
        if inner is not outer and any(_is_route_decorator(d) for d in inner.decorator_list)
    ]
    assert not nested, "routes defined inside functions:\n" + "\n".join(nested)


def _resolve(importer: str, node: ast.ImportFrom, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = importer.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


Table = dict[str, tuple[Path, ast.Module]]


def private_imports(table: Table) -> list[str]:
    offences = []
    for name, (path, tree) in table.items():
        is_package = path.name == "__init__.py"
        own_package = name if is_package else name.rpartition(".")[0]
        for node in ast.walk(tree):
            if not isinstance(node, ast.ImportFrom):
                continue
            source = _resolve(name, node, is_package)
            if not source.startswith("qala"):
                continue
            for alias in node.names:
                if not alias.name.startswith("_") or alias.name.startswith("__"):
                    continue
                private_submodule = f"{source}.{alias.name}"
                if private_submodule in table and source == own_package:
                    continue  # a package's private module, used inside that package
                offences.append(f"{path.name}:{node.lineno} {alias.name} from {source}")
    return offences


def test_no_private_names_across_modules() -> None:
    offences = private_imports(modules())
    assert not offences, "private names imported from other modules:\n" + "\n".join(offences)


def _imports(table: Table, name: str, path: Path, tree: ast.Module) -> set[str]:
    targets: set[str] = set()

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                visit(node.body)
            elif isinstance(node, ast.If | ast.Try | ast.With | ast.For):
                for block in (
                    node.body,
                    getattr(node, "orelse", []),
                    getattr(node, "finalbody", []),
                ):
                    visit(block)
                for handler in getattr(node, "handlers", []):
                    visit(handler.body)
            elif isinstance(node, ast.Import):
                targets.update(a.name for a in node.names if a.name in table)
            elif isinstance(node, ast.ImportFrom):
                source = _resolve(name, node, path.name == "__init__.py")
                for alias in node.names:
                    full = f"{source}.{alias.name}"
                    if full in table:
                        targets.add(full)
                    elif source in table:
                        targets.add(source)

    visit(tree.body)
    # A module importing from its own ancestor package's __init__ (which re-exports the package's
    # modules) is how packages are used, not a cycle between subjects: leave those edges out.
    return {t for t in targets if t != name and not name.startswith(t + ".")}


def import_cycles(table: Table) -> list[list[str]]:
    graph = {name: _imports(table, name, path, tree) for name, (path, tree) in table.items()}
    # Tarjan's strongly connected components.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = 0

    def connect(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in graph:
        if node not in index:
            connect(node)
    return cycles


def test_no_import_cycles() -> None:
    cycles = import_cycles(modules())
    assert not cycles, "import cycles:\n" + "\n".join(" → ".join(c) for c in cycles)


def _table(sources: dict[str, str]) -> Table:
    """A made-up package: module name → source text."""
    return {
        name: (Path(name.replace(".", "/") + ".py"), ast.parse(text))
        for name, text in sources.items()
    }


def test_the_checks_catch_what_they_look_for() -> None:
    made_up = _table(
        {
            "qala.pkg": "",
            "qala.pkg._kernel": "",
            "qala.pkg.a": "from qala.pkg import _kernel\nfrom .b import _helper\n",
            "qala.pkg.b": "def f():\n    from qala.pkg.a import thing\n",
            "qala.pkg.c": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from qala.pkg import a\n",
        }
    )
    assert private_imports(made_up) == ["a.py:2 _helper from qala.pkg.b"]
    assert import_cycles(made_up) == [["qala.pkg.a", "qala.pkg.b"]]
    route_in_factory = ast.parse("def build():\n    @router.get('/x')\n    def x(): ...\n")
    assert [
        f.name
        for f in functions(route_in_factory)
        if any(map(_is_route_decorator, f.decorator_list))
    ] == ["x"]
