"""Tests of deferring: ``configure()`` options and argument validation.

Everything a caller can get wrong fails before any I/O, and writes nothing.
"""

from __future__ import annotations

import datetime
import math
from typing import TYPE_CHECKING, Any

import pytest

from procrastinate_anyio import AlreadyEnqueued, InvalidJobArguments, Task
from procrastinate_anyio._deferrer import scheduled_at_from

from .conftest import NOW, stored_jobs

if TYPE_CHECKING:
    from procrastinate_anyio import App, InMemoryConnector

pytestmark = pytest.mark.anyio

UTC = datetime.timezone.utc


@pytest.fixture
def task(app: App) -> Task[..., Any]:
    @app.task(name="t", queue="base", priority=1, lock="L0", queueing_lock="Q0")
    def t(a: int, b: Any = None) -> None:
        pass

    return t


async def test_defer_async(
    app: App, connector: InMemoryConnector, task: Task[..., Any]
) -> None:
    """A job gets the task's name and options and the call's arguments."""
    async with app.open_async():
        job_id = await task.defer_async(a=1, b=[2])

    (job,) = stored_jobs(connector)
    assert (job.id, job.task_name, dict(job.task_kwargs)) == (
        job_id,
        "t",
        {"a": 1, "b": [2]},
    )
    assert (job.queue, job.priority, job.lock, job.queueing_lock, job.scheduled_at) == (
        "base",
        1,
        "L0",
        "Q0",
        None,
    )


def test_defer_sync(
    app: App, connector: InMemoryConnector, task: Task[..., Any]
) -> None:
    """``defer`` inside ``with app.open():`` writes the same job."""
    with app.open():
        job_id = task.defer(a=1)

    assert [(job.id, dict(job.task_kwargs)) for job in stored_jobs(connector)] == [
        (job_id, {"a": 1})
    ]


async def test_batch_defer(
    app: App, connector: InMemoryConnector, task: Task[..., Any]
) -> None:
    """A batch writes one job per mapping and returns the ids in order."""
    async with app.open_async():
        ids = await task.configure(queueing_lock=None).batch_defer_async(
            {"a": 1}, {"a": 2}
        )
    with app.open():
        ids += task.configure(queueing_lock=None).batch_defer({"a": 3})
        assert task.batch_defer() == []

    assert [(job.id, job.task_kwargs["a"]) for job in stored_jobs(connector)] == list(
        zip(ids, [1, 2, 3], strict=True)
    )


async def test_configure_overrides(
    app: App, connector: InMemoryConnector, task: Task[..., Any]
) -> None:
    """``configure()`` options replace the task's for the jobs it defers."""
    at = datetime.datetime(2031, 1, 1, tzinfo=UTC)
    deferrer = task.configure(
        queue="other", priority=-4, lock="L1", queueing_lock="Q1", schedule_at=at
    )

    async with app.open_async():
        await deferrer.defer_async(a=1)
        await task.configure(lock=None, queueing_lock=None).defer_async(a=2)

    first, second = stored_jobs(connector)
    assert (
        first.queue,
        first.priority,
        first.lock,
        first.queueing_lock,
        first.scheduled_at,
    ) == (
        "other",
        -4,
        "L1",
        "Q1",
        at,
    )
    assert (second.queue, second.lock, second.queueing_lock) == ("base", None, None)


async def test_task_kwargs_merge(
    app: App, connector: InMemoryConnector, task: Task[..., Any]
) -> None:
    """``configure(task_kwargs=...)`` gives defaults that call arguments override."""
    async with app.open_async():
        await task.configure(task_kwargs={"a": 1, "b": 2}).defer_async(b=3)

    assert dict(stored_jobs(connector)[0].task_kwargs) == {"a": 1, "b": 3}


@pytest.mark.parametrize(
    ("schedule_in", "delta"),
    [
        pytest.param({"seconds": 30}, datetime.timedelta(seconds=30), id="dict"),
        pytest.param(
            {"hours": 1, "minutes": 2}, datetime.timedelta(minutes=62), id="dict-many"
        ),
        pytest.param(
            datetime.timedelta(days=2), datetime.timedelta(days=2), id="timedelta"
        ),
    ],
)
def test_schedule_in(schedule_in: Any, delta: datetime.timedelta) -> None:
    """``schedule_in`` is a delay from now, as a timedelta or its keywords."""
    assert scheduled_at_from(None, schedule_in, NOW) == NOW + delta


async def test_schedule_in_defer(
    app: App, connector: InMemoryConnector, task: Task[..., Any]
) -> None:
    """A job deferred with ``schedule_in`` is scheduled that far from the call."""
    before = datetime.datetime.now(UTC)
    async with app.open_async():
        await task.configure(schedule_in={"hours": 1}).defer_async(a=1)
    after = datetime.datetime.now(UTC)

    scheduled_at = stored_jobs(connector)[0].scheduled_at
    assert scheduled_at is not None
    assert (
        before + datetime.timedelta(hours=1)
        <= scheduled_at
        <= after + datetime.timedelta(hours=1)
    )


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        pytest.param(
            {"schedule_at": datetime.datetime(2031, 1, 1)},
            ValueError,
            "timezone-aware",
            id="naive",
        ),
        pytest.param(
            {"schedule_at": NOW, "schedule_in": {"seconds": 1}},
            ValueError,
            "not both",
            id="both",
        ),
        pytest.param(
            {"schedule_in": {"fortnights": 1}}, ValueError, "schedule_in", id="bad-key"
        ),
        pytest.param({"schedule_at": "2031-01-01"}, TypeError, "datetime", id="str-at"),
        pytest.param({"priority": "high"}, TypeError, "priority", id="str-priority"),
        pytest.param({"queue": ""}, ValueError, "queue", id="empty-queue"),
        pytest.param({"queue": "q" * 256}, ValueError, "queue", id="long-queue"),
        pytest.param({"lock": 3}, TypeError, "lock", id="int-lock"),
    ],
)
def test_configure_invalid(
    task: Task[..., Any], options: dict[str, Any], error: type[Exception], match: str
) -> None:
    """Invalid ``configure()`` options fail at once, before any defer."""
    with pytest.raises(error, match=match):
        task.configure(**options)


def test_configure_schedule_replaces(task: Task[..., Any]) -> None:
    """A schedule given to ``configure()`` replaces the other kind."""
    template = task.configure(schedule_in={"seconds": 5}).template

    assert template.evolve(schedule_at=NOW).schedule_in is None
    assert template.evolve(schedule_at=NOW).schedule_at == NOW


@pytest.mark.parametrize(
    ("value", "name"),
    [
        pytest.param({1, 2}, "b", id="set"),
        pytest.param(datetime.datetime(2030, 1, 1, tzinfo=UTC), "b", id="datetime"),
        pytest.param(math.nan, "b", id="nan"),
        pytest.param(math.inf, "b", id="inf"),
        pytest.param({"nested": [object()]}, "b", id="nested-object"),
        pytest.param(b"bytes", "b", id="bytes"),
    ],
)
async def test_not_json(
    app: App, connector: InMemoryConnector, task: Task[..., Any], value: Any, name: str
) -> None:
    """A non-JSON argument fails at defer time, naming the argument; nothing is written."""
    async with app.open_async():
        with pytest.raises(InvalidJobArguments, match=f"'{name}'"):
            await task.defer_async(a=1, b=value)
        with pytest.raises(InvalidJobArguments, match=f"'{name}'"):
            await task.configure(queueing_lock=None).batch_defer_async(
                {"a": 1}, {"a": 2, "b": value}
            )
    with app.open(), pytest.raises(InvalidJobArguments, match=f"'{name}'"):
        task.defer(a=1, b=value)

    assert stored_jobs(connector) == []


async def test_nul_character(app: App, task: Task[..., Any]) -> None:
    """A string argument holding a NUL character fails at defer time."""
    async with app.open_async():
        with pytest.raises(InvalidJobArguments, match="'b'"):
            await task.defer_async(a=1, b="a\x00b")


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({}, id="missing"),
        pytest.param({"a": 1, "c": 2}, id="unexpected"),
    ],
)
async def test_signature_mismatch(
    app: App, connector: InMemoryConnector, task: Task[..., Any], kwargs: dict[str, Any]
) -> None:
    """Arguments the task's function does not accept fail; nothing is written."""
    async with app.open_async():
        with pytest.raises(InvalidJobArguments, match="'t'"):
            await task.defer_async(**kwargs)
        with pytest.raises(InvalidJobArguments):
            await task.configure(queueing_lock=None).batch_defer_async({"a": 1}, kwargs)

    assert stored_jobs(connector) == []


def test_arguments_are_keywords(app: App, task: Task[..., Any]) -> None:
    """Job arguments are keyword-only."""
    with app.open(), pytest.raises(TypeError):
        task.defer(1)  # type: ignore[call-arg]  # the point of the test


def test_batch_needs_mappings(
    app: App, connector: InMemoryConnector, task: Task[..., Any]
) -> None:
    """A batch takes one mapping per job; anything else fails, writing nothing."""
    with app.open(), pytest.raises(InvalidJobArguments, match="mapping"):
        task.configure(queueing_lock=None).batch_defer({"a": 1}, [("a", 2)])  # type: ignore[arg-type]  # the point of the test

    assert stored_jobs(connector) == []


async def test_pass_context(app: App, connector: InMemoryConnector) -> None:
    """A ``pass_context`` task's first parameter is the context, not an argument."""

    @app.task(name="ctx", pass_context=True)
    async def ctx(context: object, a: int) -> None:
        pass

    async with app.open_async():
        await ctx.defer_async(a=1)
        with pytest.raises(InvalidJobArguments):
            await ctx.defer_async(context=1, a=1)

    assert [dict(job.task_kwargs) for job in stored_jobs(connector)] == [{"a": 1}]


async def test_queueing_lock(
    app: App, connector: InMemoryConnector, task: Task[..., Any]
) -> None:
    """A second job with a waiting job's queueing lock raises AlreadyEnqueued."""
    async with app.open_async():
        await task.defer_async(a=1)
        with pytest.raises(AlreadyEnqueued) as exc_info:
            await task.defer_async(a=2)

    assert exc_info.value.queueing_lock == "Q0"
    assert len(stored_jobs(connector)) == 1


def test_repr(task: Task[..., Any]) -> None:
    """A deferrer shows its task and queue."""
    assert repr(task.configure(queue="q")) == "JobDeferrer('t', queue='q')"
