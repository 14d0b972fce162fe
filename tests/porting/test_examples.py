"""Procrastinate's documented examples (our own versions, in
``examples/``), written against Procrastinate and run here with only their
imports changed: ``procrastinate`` becomes ``procrastinate_anyio`` and
nothing else is touched. Each must end as it does on Procrastinate.

The examples build ``PsycopgConnector()`` with no arguments, as
Procrastinate's docs do: libpq's ``PG*`` variables point it at the test
database.
"""

from __future__ import annotations

import pathlib
import re
import sys
import types
from typing import Any

import anyio
import psycopg
import pytest

from tests import procrastinate_tables

EXAMPLES = pathlib.Path(__file__).parent / "examples"
IMPORT = re.compile(r"^(from|import) procrastinate\b", re.MULTILINE)
MODULE_IMPORT = re.compile(r"^import procrastinate$", re.MULTILINE)


def ported_source(name: str) -> str:
    """The example's source with Procrastinate's imports made ours
    (``import procrastinate`` becomes ``import procrastinate_anyio as
    procrastinate``, as a user would write it)."""
    source = (EXAMPLES / f"{name}.py").read_text()
    source = MODULE_IMPORT.sub("import procrastinate_anyio as procrastinate", source)
    return IMPORT.sub(r"\1 procrastinate_anyio", source)


def test_only_imports_change() -> None:
    """The rewrite changes import lines and nothing else."""
    for path in sorted(EXAMPLES.glob("*.py")):
        before = path.read_text().splitlines()
        after = ported_source(path.stem).splitlines()
        changed = [b for b, a in zip(before, after, strict=True) if b != a]
        assert changed, path.name  # each example imports Procrastinate
        assert all(re.match(r"(from|import) procrastinate\b", line) for line in changed)


@pytest.fixture(
    params=[
        pytest.param("procrastinate_anyio", id="ours"),
        pytest.param("procrastinate", id="procrastinate"),
    ]
)
def library(request: pytest.FixtureRequest) -> str:
    """Which library the example runs on: ported (ours), or as written, on
    Procrastinate itself, which proves what "ends the same" means."""
    name: str = request.param
    return name


@pytest.fixture
def load(pg_dsn: str, monkeypatch: pytest.MonkeyPatch, library: str) -> Any:
    """Load an example as a module, ported or (``library`` procrastinate) as
    written, with libpq pointed at the test database (the examples say
    ``PsycopgConnector()``); Procrastinate's own schema is installed for it."""
    params = psycopg.conninfo.conninfo_to_dict(pg_dsn)
    for key, variable in [
        ("host", "PGHOST"),
        ("port", "PGPORT"),
        ("user", "PGUSER"),
        ("dbname", "PGDATABASE"),
    ]:
        if key in params:
            monkeypatch.setenv(variable, str(params[key]))

    if library == "procrastinate":
        procrastinate_tables.install_schema(pg_dsn)

    def load_example(name: str) -> types.ModuleType:
        module = types.ModuleType(f"porting_example_{name}")
        monkeypatch.setitem(sys.modules, module.__name__, module)
        module.__library__ = library  # type: ignore[attr-defined]  # for run_async
        source = (
            ported_source(name)
            if library == "procrastinate_anyio"
            else (EXAMPLES / f"{name}.py").read_text()
        )
        exec(compile(source, f"{name}.py", "exec"), vars(module))
        return module

    return load_example


def run_async(main: Any, backend: str) -> Any:
    if backend == "trio" and main.__globals__["__library__"] == "procrastinate":
        pytest.skip("Procrastinate runs on asyncio only")
    return anyio.run(main, backend=backend)


def test_quickstart(load: Any) -> None:
    """The quickstart: sync defer, sync worker, results."""
    assert load("quickstart").main() == [3, 7, 11]


def test_defer(load: Any) -> None:
    """configure() options, defer by name, batch defer."""
    assert load("defer").main() == ("inbox", 5, True, "tests.porting.send", ["c", "d"])


def test_retry(load: Any) -> None:
    """Procrastinate's retry numbers: ``retry=2`` is 3 runs, attempts 0, 1, 2."""
    runs, statuses = load("retry").main()

    assert runs == {"int": [0, 1, 2], "strategy": [0, 1], "custom": [0, 1]}
    assert statuses == ["failed", "failed", "failed"]


def test_locks(load: Any) -> None:
    """Jobs of a lock run in order; a queueing lock refuses a second job."""
    assert load("locks").main() == ([0, 1, 2], True, 10)


def test_priorities(load: Any) -> None:
    """Higher priority first."""
    assert load("priorities").main() == ["high", "normal", "low"]


def test_cancellation(load: Any) -> None:
    """Cancel, cancel and delete, abort a running sync job."""
    assert load("cancellation").main() == ("cancelled", "aborted", [])


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_context(load: Any, backend: str) -> None:
    """What a task sees of its job and worker."""
    ((task_name, kwargs, worker, queues, db),) = run_async(
        load("context").main, backend
    )

    assert task_name.endswith("inspect_me")
    assert (kwargs, worker, queues, db) == ({"x": 1}, "w1", "queues ctx", "handle")


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_middleware(load: Any, backend: str) -> None:
    """Worker middleware outermost, then task middleware of the task's kind."""
    assert run_async(load("middleware").main, backend) == [
        "worker>",
        "sync:s",
        "s",
        "<worker",
        "worker>",
        "async:a",
        "a",
        "<worker",
    ]


def test_custom_json(load: Any) -> None:
    """Datetimes through the connector's json_dumps/json_loads."""
    assert load("custom_json").main() == (["datetime"], True)


def test_blueprints(load: Any) -> None:
    """A blueprint's task under the app's namespace."""
    assert load("blueprints").main() == ("lib:ping", "pong")


def test_shutdown(load: Any) -> None:
    """Cancelling the worker's asyncio task lets the running job end."""
    assert run_async(load("shutdown").main, "asyncio") == ("succeeded", "finished")


def test_testing(load: Any) -> None:
    """The in-memory connector in a user's tests."""
    rows, statuses, after_reset = load("testing").main()

    ((task_name, args, status),) = rows
    assert task_name.endswith("notify")
    assert (args, status, statuses, after_reset) == (
        {"user": 7},
        "todo",
        ["succeeded"],
        {},
    )


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_maintenance(load: Any, backend: str, library: str) -> None:
    """Stalled jobs, queue counts as dicts, deleting old jobs, the builtin
    by Procrastinate's name.

    A deliberate difference: our builtin task's name is
    ``builtin:remove_old_jobs``; Procrastinate's name is one of its aliases,
    so jobs deferred under it run ("Coming from Procrastinate").
    """
    builtin = (
        "builtin:procrastinate.builtin_tasks.remove_old_jobs"
        if library == "procrastinate"
        else "builtin:remove_old_jobs"
    )
    assert run_async(load("maintenance").main, backend) == (
        [],
        [("q", 1)],
        0,
        builtin,
    )


def test_readme(load: Any) -> None:
    """The README's example: module import, connector kwargs, a queue."""
    assert load("readme").main() == [8]


def test_tasks(load: Any) -> None:
    """Task options, an alias, the context's job."""
    name, options, calls, context_names = load("tasks").main()

    assert name == "renamed"
    assert options == ("reports", 7, "report")
    assert calls == [("plain", 1), ("renamed", 2), ("report", "monday")]
    (context_name,) = context_names
    assert context_name.endswith("who_am_i")


def test_batch_defer(load: Any) -> None:
    """A batch: ids in order; a taken queueing lock refuses all of it."""
    assert run_async(load("batch_defer").main, "asyncio") == (3, True, True, [1, 2, 3])


def test_queueing_locks(load: Any) -> None:
    """One waiting job per queueing lock; free again once it ran."""
    assert load("queueing_locks").main() == ([True, False, True], [1, 3], True)


def test_periodic(load: Any) -> None:
    """A periodic task runs on its tick with the tick's timestamp."""
    assert run_async(load("periodic").main, "asyncio") == ("int", True, True)


def test_scheduling(load: Any) -> None:
    """schedule_at and schedule_in; only due jobs run."""
    ran, at_ok, in_ok, statuses = load("scheduling").main()

    assert (ran, at_ok, in_ok) == (["due", "now"], True, True)
    assert statuses == ["todo", "todo"]


def test_external_connections(load: Any) -> None:
    """A defer and a cancel in the caller's transaction (psycopg's own async
    connection: asyncio)."""
    assert run_async(load("external_connections").main, "asyncio") == (
        [2],
        "todo",
        "cancelled",
    )
