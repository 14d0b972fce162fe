"""Tests of ``App``: opening, the sync API, ``configure_task``, loading by path,
and the job manager on the in-memory connector."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from procrastinate_anyio import (
    App,
    AppNotOpen,
    InMemoryConnector,
    InvalidJobArguments,
    LoadFromPathError,
    Status,
    TaskNotFound,
)
from procrastinate_anyio._app import load_app

from .conftest import stored_jobs

if TYPE_CHECKING:
    import pathlib

pytestmark = pytest.mark.anyio

LOADABLE_APP = App(connector=InMemoryConnector())
NOT_AN_APP = 42


@pytest.fixture
def task(app: App) -> Any:
    @app.task(name="t", queue="tq", priority=2, lock="L")
    def t(a: int = 0) -> None:
        pass

    return t


def test_sync_api_needs_open(app: App, task: Any) -> None:
    """The sync API outside ``with app.open():`` raises AppNotOpen, before and after."""
    with pytest.raises(AppNotOpen):
        task.defer()
    with app.open():
        task.defer()
    with pytest.raises(AppNotOpen):
        app.job_manager.list_jobs()
    with pytest.raises(AppNotOpen):
        app.schema_manager.check_schema()


async def test_open_async(app: App, connector: InMemoryConnector) -> None:
    """``open_async`` opens the connector for the duration of the block."""
    async with app.open_async() as opened:
        assert opened is app
        assert connector.is_open
    assert not connector.is_open


async def test_open_async_error(app: App, connector: InMemoryConnector) -> None:
    """``open_async`` closes the connector when the block raises."""
    with pytest.raises(RuntimeError, match="inside"):
        async with app.open_async():
            raise RuntimeError("inside")
    assert not connector.is_open


def test_configure_known_task(
    app: App, connector: InMemoryConnector, task: Any
) -> None:
    """``configure_task`` of a known task keeps its options unless given."""
    with app.open():
        app.configure_task("t").defer()
        app.configure_task("t", priority=9, queue="other").defer(a=1)

    first, second = stored_jobs(connector)
    assert (first.task_name, first.queue, first.priority, first.lock) == (
        "t",
        "tq",
        2,
        "L",
    )
    assert (second.queue, second.priority, second.lock) == ("other", 9, "L")


def test_configure_known_task_clears_lock(
    app: App, connector: InMemoryConnector, task: Any
) -> None:
    """``configure_task(name, lock=None)`` defers without the task's lock."""
    with app.open():
        app.configure_task("t", lock=None).defer()

    (job,) = stored_jobs(connector)
    assert (job.lock, job.priority) == (None, 2)


def test_configure_known_task_checks_arguments(app: App, task: Any) -> None:
    """``configure_task`` of a known task checks arguments against its signature."""
    with app.open(), pytest.raises(InvalidJobArguments):
        app.configure_task("t").defer(b=1)


def test_configure_unknown_task(app: App, connector: InMemoryConnector) -> None:
    """An unknown task defers to ``queue`` or "default", arguments unchecked."""
    with app.open():
        app.configure_task("elsewhere.task").defer(anything=[1])
        app.configure_task("elsewhere.task", queue="q", priority=3, lock="X").defer()

    first, second = stored_jobs(connector)
    assert (first.task_name, first.queue, first.priority, dict(first.task_kwargs)) == (
        "elsewhere.task",
        "default",
        0,
        {"anything": [1]},
    )
    assert (second.queue, second.priority, second.lock) == ("q", 3, "X")


def test_configure_unknown_task_refused(app: App) -> None:
    """With ``allow_unknown=False``, an unknown task raises TaskNotFound."""
    with pytest.raises(TaskNotFound, match="'nope'"):
        app.configure_task("nope", allow_unknown=False)


async def test_job_manager(app: App, task: Any) -> None:
    """The job manager reads, lists and cancels jobs, sync and async."""
    async with app.open_async():
        first = await task.defer_async(a=1)
        second = await task.configure(lock=None, queue="q2").defer_async(a=2)
        manager = app.job_manager

        found = await manager.get_job_async(first)
        assert found is not None
        assert found.task_kwargs == {"a": 1}
        assert [j.id for j in await manager.list_jobs_async(queue="q2")] == [second]
        assert await manager.cancel_job_by_id_async(second) is True
        assert [j.id for j in await manager.list_jobs_async(status="cancelled")] == [
            second
        ]
        assert await manager.get_job_async(99) is None

    with app.open():
        assert [j.id for j in manager.list_jobs(task="t", status=Status.TODO)] == [
            first
        ]
        assert manager.cancel_job_by_id(first, delete_job=True) is True
        assert manager.get_job(first) is None
        assert manager.cancel_job_by_id(first) is False


def test_list_jobs_bad_status(app: App) -> None:
    """An unknown status name is refused."""
    with app.open(), pytest.raises(ValueError, match="nope"):
        app.job_manager.list_jobs(status="nope")


def test_with_connector(app: App, task: Any) -> None:
    """``with_connector`` copies the tasks onto another connector."""
    other = InMemoryConnector()

    copy = app.with_connector(other)

    assert copy.connector is other
    assert copy.get_task("t") is task
    assert set(copy.tasks) == set(app.tasks)


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("tests.unit.test_app.LOADABLE_APP", id="dotted"),
        pytest.param("tests.unit.test_app:LOADABLE_APP", id="colon"),
    ],
)
def test_load_app(path: str) -> None:
    """``load_app`` returns the App at a dotted path."""
    assert load_app(path) is LOADABLE_APP


@pytest.mark.parametrize(
    ("path", "match"),
    [
        pytest.param("nodots", "dotted path", id="no-dot"),
        pytest.param("tests.unit.", "dotted path", id="no-attribute"),
        pytest.param("pa_no_such_module_xyz.app", "Could not import", id="no-module"),
        pytest.param("tests.unit.test_app.MISSING", "no attribute", id="missing"),
        pytest.param(
            "tests.unit.test_app.NOT_AN_APP", "int, not an App", id="not-an-app"
        ),
    ],
)
def test_load_app_errors(path: str, match: str) -> None:
    """Bad paths raise LoadFromPathError, which is also an ImportError."""
    with pytest.raises(LoadFromPathError, match=match) as exc_info:
        load_app(path)

    assert isinstance(exc_info.value, ImportError)


def test_load_app_module_fails(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A module that raises while importing gives LoadFromPathError."""
    (tmp_path / "pa_broken_module.py").write_text(
        "raise RuntimeError('broken at import')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))

    with pytest.raises(LoadFromPathError, match="broken at import"):
        load_app("pa_broken_module.app")


def test_import_paths(app: App) -> None:
    """``perform_import_paths`` imports modules; a missing one raises LoadFromPathError."""
    App(connector=InMemoryConnector(), import_paths=["json"]).perform_import_paths()
    bad = App(connector=InMemoryConnector(), import_paths=["pa_no_such_module_xyz"])

    with pytest.raises(LoadFromPathError, match="pa_no_such_module_xyz"):
        bad.perform_import_paths()


async def test_schema_manager(app: App) -> None:
    """The schema manager applies the schema once and reports it current."""
    async with app.open_async():
        assert not (await app.schema_manager.check_schema_async()).exists
        applied = await app.schema_manager.apply_schema_async()
        assert applied
        status = await app.schema_manager.check_schema_async()

    assert status.is_current
    assert list(status.applied) == applied
    with app.open():
        assert app.schema_manager.apply_schema() == []
