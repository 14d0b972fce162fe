"""Tests of ``Blueprint``: registering tasks, and an app adopting them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from procrastinate_anyio import (
    Blueprint,
    TaskAlreadyRegistered,
    TaskNotFound,
    UnboundTaskError,
)

from .conftest import stored_jobs

if TYPE_CHECKING:
    from procrastinate_anyio import App, InMemoryConnector

pytestmark = pytest.mark.anyio


def work(x: int) -> None:
    pass


def other(x: int) -> None:
    pass


def test_name_clash() -> None:
    """Two tasks cannot share a name."""
    bp = Blueprint()
    bp.task(name="t")(work)

    with pytest.raises(TaskAlreadyRegistered, match="'t'"):
        bp.task(name="t")(other)

    assert bp.get_task("t").func is work


@pytest.mark.parametrize(
    ("first", "second"),
    [
        pytest.param(
            {"name": "a", "aliases": ["b"]}, {"name": "b"}, id="name-on-alias"
        ),
        pytest.param(
            {"name": "a"}, {"name": "b", "aliases": ["a"]}, id="alias-on-name"
        ),
        pytest.param(
            {"name": "a", "aliases": ["c"]},
            {"name": "b", "aliases": ["c"]},
            id="alias-on-alias",
        ),
    ],
)
def test_alias_clash(first: dict[str, Any], second: dict[str, Any]) -> None:
    """A name or alias cannot be reused by another task."""
    bp = Blueprint()
    bp.task(**first)(work)

    with pytest.raises(TaskAlreadyRegistered):
        bp.task(**second)(other)

    assert [task.func for task in bp.tasks.values()] == [work]


def test_get_unknown_task() -> None:
    """Asking for an unknown name raises TaskNotFound."""
    with pytest.raises(TaskNotFound, match="'nope'"):
        Blueprint().get_task("nope")


async def test_unbound_task_cannot_defer() -> None:
    """A blueprint's task cannot defer before an app adopts the blueprint."""
    bp = Blueprint()
    task = bp.task(name="t")(work)

    with pytest.raises(UnboundTaskError):
        await task.defer_async(x=1)
    with pytest.raises(UnboundTaskError):
        task.defer(x=1)
    with pytest.raises(UnboundTaskError):
        task.configure(priority=3).defer(x=1)


async def test_add_tasks_from(app: App, connector: InMemoryConnector) -> None:
    """An app adopts a blueprint's tasks under ``namespace:name``; they defer to it."""
    bp = Blueprint()
    task = bp.task(name="t", aliases=["old"])(work)

    app.add_tasks_from(bp, namespace="ns")

    assert (task.name, task.aliases) == ("ns:t", ["ns:old"])
    assert app.get_task("ns:t") is app.get_task("ns:old") is task
    assert list(bp.tasks) == ["ns:t"]
    assert bp.get_task("ns:old") is task
    with pytest.raises(TaskNotFound):
        app.get_task("t")
    async with app.open_async():
        job_id = await task.defer_async(x=1)
    assert [(job.id, job.task_name) for job in stored_jobs(connector)] == [
        (job_id, "ns:t")
    ]


def test_nested_blueprints(app: App) -> None:
    """A blueprint added to a blueprint, then to an app, stacks the namespaces."""
    inner = Blueprint()
    task = inner.task(name="t")(work)
    outer = Blueprint()
    outer.add_tasks_from(inner, namespace="in")

    app.add_tasks_from(outer, namespace="out")

    assert task.name == "out:in:t"
    assert app.get_task("out:in:t") is task
    assert inner.job_manager is app.job_manager


def test_add_tasks_from_clash_changes_nothing(app: App) -> None:
    """A renamed task that clashes with the app's refuses the whole blueprint."""
    app.task(name="ns:b")(other)
    before = dict(app.tasks)
    bp = Blueprint()
    bp.task(name="a")(work)
    bp.task(name="b")(work)

    with pytest.raises(TaskAlreadyRegistered, match="'ns:b'"):
        app.add_tasks_from(bp, namespace="ns")

    assert app.tasks == before
    assert list(bp.tasks) == ["a", "b"]
    with pytest.raises(UnboundTaskError):
        _ = bp.job_manager


@pytest.mark.parametrize(
    "namespace",
    [
        pytest.param("", id="empty"),
        pytest.param("a:b", id="colon"),
    ],
)
def test_bad_namespace(app: App, namespace: str) -> None:
    """A namespace is a non-empty name without ':'."""
    bp = Blueprint()
    bp.task(name="t")(work)

    with pytest.raises(ValueError, match="namespace"):
        app.add_tasks_from(bp, namespace=namespace)


def test_add_twice(app: App) -> None:
    """A blueprint is adopted once; a blueprint cannot adopt itself."""
    bp = Blueprint()
    app.add_tasks_from(bp, namespace="ns")

    with pytest.raises(ValueError, match="already added"):
        app.add_tasks_from(bp, namespace="again")
    with pytest.raises(ValueError, match="its own"):
        app.add_tasks_from(app, namespace="self")


def test_decorator_forms() -> None:
    """``@bp.task`` works bare and with options."""
    bp = Blueprint()

    @bp.task
    def bare() -> None:
        pass

    @bp.task(queue="q")
    def configured() -> None:
        pass

    assert bare.name.endswith("test_decorator_forms.<locals>.bare")
    assert configured.queue == "q"


def test_periodic_on_an_unadopted_blueprint_reaches_the_app(app: App) -> None:
    """``@bp.periodic`` needs no app yet; the adopting app runs the schedule."""
    bp = Blueprint()

    @bp.periodic(cron="*/5 * * * *", queue="ticks")
    @bp.task(name="tick")
    async def tick(timestamp: int) -> None: ...

    app.add_tasks_from(bp, namespace="lib")

    assert [(p.task.name, p.cron) for p in app.periodic_tasks] == [
        ("lib:tick", "*/5 * * * *")
    ]
    assert tick.job_template(queue="ticks").queue == "ticks"


def test_periodic_declared_after_the_adoption_reaches_the_app(app: App) -> None:
    """A schedule added to an adopted blueprint is the app's too."""
    bp = Blueprint()

    @bp.task(name="tick")
    async def tick(timestamp: int) -> None: ...

    app.add_tasks_from(bp, namespace="lib")
    bp.periodic(cron="0 * * * *", periodic_id="hourly")(tick)

    assert [(p.task.name, p.periodic_id) for p in app.periodic_tasks] == [
        ("lib:tick", "hourly")
    ]
