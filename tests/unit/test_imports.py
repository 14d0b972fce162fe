"""The house rules of the package, read statically from its source with
``ast``: no import cycle between its modules (``TYPE_CHECKING`` and
function-level imports count), psycopg only in the PostgreSQL connector's
folder (and the contrib integrations), asyncio nowhere."""

from __future__ import annotations

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[2] / "procrastinate_anyio"
NAME = PACKAGE.name


def module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, pathlib.Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imported_names(path: pathlib.Path) -> list[tuple[str, list[str]]]:
    """Every import of the file, anywhere in it: (module, names taken from it)."""
    module = module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[tuple[str, list[str]]] = []
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            found.append((target, [alias.name for alias in node.names]))
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> the package's modules it imports (``from pkg import mod``
    counts as importing ``pkg.mod``)."""
    known = modules()
    graph: dict[str, set[str]] = {name: set() for name in known}
    for name, path in known.items():
        for target, names in imported_names(path):
            if target != NAME and not target.startswith(NAME + "."):
                continue
            submodules = {f"{target}.{n}" for n in names} & known.keys()
            graph[name] |= submodules or ({target} & known.keys())
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module, or a
    module importing itself (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph.get(node, ())):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                other = stack.pop()
                on_stack.discard(other)
                component.append(other)
                if other == node:
                    break
            if len(component) > 1 or node in graph.get(node, ()):
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


@pytest.mark.parametrize(
    ("graph", "expected"),
    [
        pytest.param({"a": {"b"}, "b": set()}, [], id="none"),
        pytest.param({"a": {"b"}, "b": {"a"}}, [["a", "b"]], id="two"),
        pytest.param(
            {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}},
            [["a", "b", "c"]],
            id="three",
        ),
        pytest.param({"a": {"a"}}, [["a"]], id="self"),
    ],
)
def test_cycle_finder(graph: dict[str, set[str]], expected: list[list[str]]) -> None:
    """The cycle finder finds what it must (so the rule below can fail)."""
    assert cycles(graph) == expected


def test_graph_sees_every_kind_of_import() -> None:
    """Relative, absolute, ``TYPE_CHECKING`` and ``from . import module``
    imports all become edges."""
    graph = import_graph()

    assert f"{NAME}.worker._worker" in graph[f"{NAME}._app"]  # relative
    assert f"{NAME}._json" in graph[f"{NAME}._deferrer"]  # from . import _json
    assert f"{NAME}._job_manager" in graph[f"{NAME}._deferrer"]  # TYPE_CHECKING


def test_no_import_cycle() -> None:
    """No module of the package imports, even indirectly, one that imports it."""
    assert cycles(import_graph()) == []


def test_psycopg_only_in_the_postgres_connector() -> None:
    """psycopg is imported only under connectors/postgres/ (and by the contrib
    integrations, which use their framework's driver)."""
    allowed = (f"{NAME}.connectors.postgres", f"{NAME}.contrib.")
    importers = {
        name
        for name, path in modules().items()
        for target, _ in imported_names(path)
        if target.split(".")[0] in {"psycopg", "psycopg_pool"}
    }

    assert importers
    assert sorted(n for n in importers if not n.startswith(allowed)) == []


def test_no_asyncio() -> None:
    """Everything goes through AnyIO, so Trio works: asyncio is never imported."""
    assert [
        name
        for name, path in modules().items()
        for target, _ in imported_names(path)
        if target.split(".")[0] == "asyncio"
    ] == []


def test_no_procrastinate() -> None:
    """Procrastinate itself is never imported: the move from its tables reads
    them with SQL, and only tests install it."""
    assert [
        name
        for name, path in modules().items()
        for target, _ in imported_names(path)
        if target.split(".")[0] == "procrastinate"
    ] == []


def test_opentelemetry_only_in_its_contrib() -> None:
    """The ``otel`` extra is optional: only contrib.opentelemetry imports
    opentelemetry, so the package imports and works without it."""
    importers = {
        name
        for name, path in modules().items()
        for target, _ in imported_names(path)
        if target.split(".")[0] == "opentelemetry"
    }

    assert importers
    allowed = f"{NAME}.contrib.opentelemetry"
    assert sorted(n for n in importers if not n.startswith(allowed)) == []
