"""Every ``python`` block of README.md and docs/ runs here, against a fresh
test database, on asyncio and on trio, so the documentation cannot drift
from the code.

How a document runs, as a reader goes through it:

- its blocks run in order in one namespace, so a block may use what an
  earlier one of the same page defined;
- the namespace starts with ``pa`` and ``anyio`` imported, ``dsn`` (the test
  database) and ``app``, an open app on it with the quickstart's ``add``
  task (``queue="sums", name="sum"``), as a reader of a how-to has after the
  quickstart; a page that makes its own ``app`` replaces it;
- ``postgresql:///mydb`` in a block means the test database;
- a block with ``await`` runs in the event loop (top-level await, like
  ``python -m asyncio``); any other block runs in a worker thread, as code
  with no event loop; a block that starts its own loop (``anyio.run``,
  ``run_worker_sync``) runs while the namespace's ``app`` is closed, as it
  would at the top of a program;
- the ``async def test_...`` functions a block defines are run after it;
- a worker started at the top of a program (not as a child through
  ``task_status``) stops once no job is left (``wait=False``), so that a
  block running a worker "until SIGINT" ends: the one liberty the runner
  takes.

Markers, in an HTML comment on the line before a block (invisible on the
rendered page): ``<!-- no-run: why -->`` skips the block (keep them few),
``<!-- setup: code -->`` runs ``code`` first (for state the page assumes,
like a failed job). ``docs/howto/django.md`` is left to the Django
integration's own tests.
"""

from __future__ import annotations

import ast
import functools
import inspect
import pathlib
import re
import textwrap
from typing import Any

import anyio
import attrs
import pytest

import procrastinate_anyio as pa

ROOT = pathlib.Path(__file__).resolve().parents[2]
DOCUMENTS = [
    ROOT / "README.md",
    *sorted(
        path for path in (ROOT / "docs").rglob("*.md") if "_build" not in path.parts
    ),
]
NOT_HERE = {ROOT / "docs" / "howto" / "django.md"}  # tested with contrib.django
PLACEHOLDER_DSN = "postgresql:///mydb"
STARTS_A_LOOP = re.compile(r"\banyio\.run\(|\btrio\.run\(|\.run_worker_sync\(")
FENCE = re.compile(r"^(?P<indent>\s*)```(?P<lang>[^\s`]*)[^`]*$")  # info string after
MARKER = re.compile(r"^\s*<!--\s*(?P<kind>no-run|setup):(?P<text>.*?)-->\s*$", re.S)

pytestmark = pytest.mark.anyio


@attrs.frozen
class Block:
    path: pathlib.Path
    line: int
    code: str
    setup: str = ""
    skip: str | None = None


def python_blocks(path: pathlib.Path) -> list[Block]:
    """The ``python`` fenced blocks of a Markdown file, with their markers."""
    lines = path.read_text().splitlines()
    blocks: list[Block] = []
    comment: tuple[str, str] | None = None
    i = 0
    while i < len(lines):
        if lines[i].lstrip().startswith("<!--"):
            end = i
            while "-->" not in lines[end]:
                end += 1
            match = MARKER.match("\n".join(lines[i : end + 1]))
            comment = (match["kind"], match["text"]) if match else None
            i = end + 1
            continue
        fence = FENCE.match(lines[i])
        if fence is None:
            if lines[i].strip():
                comment = None
            i += 1
            continue
        end = i + 1
        while lines[end].strip() != "```":
            end += 1
        if fence["lang"] == "python":
            kind, text = comment or ("", "")
            blocks.append(
                Block(
                    path=path,
                    line=i + 1,
                    code=textwrap.dedent("\n".join(lines[i + 1 : end])),
                    setup=textwrap.dedent(text).strip() if kind == "setup" else "",
                    skip=text.strip() if kind == "no-run" else None,
                )
            )
        comment = None
        i = end + 1
    return blocks


def documents_with_blocks() -> list[Any]:
    return [
        pytest.param(path, id=str(path.relative_to(ROOT)))
        for path in DOCUMENTS
        if path not in NOT_HERE and python_blocks(path)
    ]


def test_every_document_is_found():
    """The runner sees the pages that have Python blocks (a sanity check on the parser)."""
    found = {param.id for param in documents_with_blocks()}
    assert {"README.md", "docs/quickstart.md", "docs/howto/defer.md"} <= found


def test_markers_are_few_and_explained():
    """A skipped block says why; skips stay rare."""
    blocks = [block for path in DOCUMENTS for block in python_blocks(path)]
    skipped = [block for block in blocks if block.skip is not None]
    assert all(block.skip for block in skipped)
    assert len(skipped) <= max(2, len(blocks) // 10)


async def run_code(source: str, namespace: dict[str, Any], where: str) -> None:
    code = compile(source, where, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    if code.co_flags & inspect.CO_COROUTINE:
        await eval(code, namespace)
        return
    app = namespace.get("app")
    reopen = (
        STARTS_A_LOOP.search(source) is not None
        and isinstance(app, pa.App)
        and app.connector.is_open
    )
    if reopen:
        assert isinstance(app, pa.App)
        await app.connector.close_async()
    try:
        await anyio.to_thread.run_sync(functools.partial(exec, code, namespace))
    finally:
        if reopen:
            assert isinstance(app, pa.App)
            await app.connector.open_async()


@pytest.fixture
def workers_stop_when_idle(monkeypatch: pytest.MonkeyPatch) -> None:
    # Every entry point (run_worker, run_worker_sync) ends in run_worker_async.
    run_worker_async = pa.App.run_worker_async

    async def idle_stop(self: pa.App, **options: Any) -> None:
        if "task_status" not in options:  # a child is stopped by its parent
            options.setdefault("wait", False)
        options["install_signal_handlers"] = False
        await run_worker_async(self, **options)

    monkeypatch.setattr(pa.App, "run_worker_async", idle_stop)


@pytest.mark.usefixtures("workers_stop_when_idle")
@pytest.mark.parametrize("path", documents_with_blocks())
async def test_document(path: pathlib.Path, pg_dsn: str) -> None:
    """Every Python block of the page runs, in order, without error."""
    app = pa.App(connector=pa.PsycopgConnector(pg_dsn))

    @app.task(queue="sums", name="sum")
    async def add(a: int, b: int) -> int:
        return a + b

    namespace: dict[str, Any] = {
        "__name__": "__docs__",
        "pa": pa,
        "anyio": anyio,
        "dsn": pg_dsn,
        "app": app,
        "add": add,
    }
    async with app.open_async():
        for block in python_blocks(path):
            if block.skip is not None:
                continue
            where = f"{path.relative_to(ROOT)}:{block.line}"
            if block.setup:
                await run_code(block.setup, namespace, f"{where} (setup)")
            await run_code(
                block.code.replace(PLACEHOLDER_DSN, pg_dsn), namespace, where
            )
            for name, value in list(namespace.items()):
                if name.startswith("test_") and inspect.iscoroutinefunction(value):
                    del namespace[name]
                    await value()
