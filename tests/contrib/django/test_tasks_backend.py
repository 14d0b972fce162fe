"""The backend of Django's tasks framework (Django 6+)."""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

import anyio
import pytest

pytest.importorskip("django.tasks")

from django.db import connections, transaction
from django.tasks import TaskResultStatus, task
from django.tasks.exceptions import InvalidTask, TaskResultDoesNotExist
from django.utils import timezone

from procrastinate_anyio.contrib.django import app

from .testapp import django_tasks
from .testapp.models import Note

if TYPE_CHECKING:
    from collections.abc import Callable


async def in_thread(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    def run() -> Any:
        try:
            return func(*args, **kwargs)
        finally:
            connections.close_all()

    return await anyio.to_thread.run_sync(run)


async def run_worker() -> None:
    with anyio.fail_after(30):
        await app.run_worker(wait=False)


def test_enqueue_defers_a_job(django_db: str) -> None:
    """``enqueue`` writes a job: the task's path, queue and priority, its
    arguments; the result is READY."""
    result = django_tasks.double.enqueue(21)

    job = app.job_manager.get_job(int(result.id))
    assert job is not None
    assert (job.task_name, job.queue, job.priority) == (
        django_tasks.double.module_path,
        "other",
        50,
    )
    assert job.task_kwargs == {"args": [21], "kwargs": {}}
    assert result.status == TaskResultStatus.READY
    assert django_tasks.double.get_result(result.id).status == TaskResultStatus.READY


def test_enqueue_joins_the_transaction(django_db: str) -> None:
    """An enqueue in a transaction that rolls back leaves no job."""

    def enqueue_then_fail() -> None:
        with transaction.atomic():
            django_tasks.add_note.enqueue("gone")
            raise RuntimeError

    with pytest.raises(RuntimeError):
        enqueue_then_fail()

    assert app.job_manager.list_jobs() == []


async def test_worker_runs_orm_task(django_db: str, anyio_backend: str) -> None:
    """The worker runs a sync task that uses the ORM; ``get_result`` gives its
    return value."""
    result = await in_thread(django_tasks.add_note.enqueue, "hello", times=2)

    await run_worker()

    done = await in_thread(django_tasks.add_note.get_result, result.id)
    assert done.status == TaskResultStatus.SUCCESSFUL
    assert done.is_finished
    assert done.attempts == 1
    ids = await in_thread(lambda: list(Note.objects.values_list("id", flat=True)))
    assert sorted(done.return_value) == sorted(ids)


async def test_worker_resolves_unregistered_task(
    django_db: str, anyio_backend: str
) -> None:
    """A worker runs a Django task it has not seen before (deferred by
    another process): it imports it by path."""
    result = await in_thread(django_tasks.double.enqueue, 4)
    app.tasks.pop(django_tasks.double.module_path)

    await run_worker()

    done = await in_thread(django_tasks.double.get_result, result.id)
    assert (done.status, done.return_value) == (TaskResultStatus.SUCCESSFUL, 8)


async def test_takes_context(django_db: str, anyio_backend: str) -> None:
    """A task that takes the context sees its attempt and result id."""
    result = await in_thread(django_tasks.attempt_and_id.enqueue)

    await run_worker()

    done = await in_thread(django_tasks.attempt_and_id.get_result, result.id)
    assert done.return_value == {"attempt": 1, "id": result.id}


async def test_failure_is_reported(django_db: str, anyio_backend: str) -> None:
    """A task that raises is FAILED, with its exception class and traceback."""
    result = await in_thread(django_tasks.fail.enqueue, "boom")

    await run_worker()

    done = await in_thread(django_tasks.fail.get_result, result.id)
    assert done.status == TaskResultStatus.FAILED
    (error,) = done.errors
    assert error.exception_class is ValueError
    assert "boom" in error.traceback
    with pytest.raises(ValueError, match="Task failed"):
        _ = done.return_value


async def test_run_after_waits(django_db: str, anyio_backend: str) -> None:
    """A task to run later is not run by a worker before its time."""
    later = timezone.now() + datetime.timedelta(hours=1)
    result = await in_thread(django_tasks.double.using(run_after=later).enqueue, 1)

    await run_worker()

    job = await in_thread(app.job_manager.get_job, int(result.id))
    assert job is not None
    assert job.scheduled_at == later
    done = await in_thread(django_tasks.double.get_result, result.id)
    assert done.status == TaskResultStatus.READY


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_aenqueue_and_aget_result(django_db: str, anyio_backend: str) -> None:
    """The async API works on asyncio (Django's async machinery)."""
    result = await django_tasks.double.aenqueue(5)

    await run_worker()

    done = await django_tasks.double.aget_result(result.id)
    assert (done.status, done.return_value) == (TaskResultStatus.SUCCESSFUL, 10)


def test_unknown_result(django_db: str) -> None:
    """No job with that id: TaskResultDoesNotExist."""
    with pytest.raises(TaskResultDoesNotExist):
        django_tasks.double.get_result("12345")
    with pytest.raises(TaskResultDoesNotExist):
        django_tasks.double.get_result("not-an-id")


def module_level(value: int) -> int:
    return value


def test_invalid_tasks() -> None:
    """Tasks the backend cannot run raise InvalidTask with the reason."""

    def local() -> None: ...

    with pytest.raises(InvalidTask, match="module level"):
        task(local)
    with pytest.raises(InvalidTask, match="priority"):
        task(priority=101)(module_level)
    with pytest.raises(InvalidTask, match="Queue 'nope' is not valid"):
        task(queue_name="nope")(module_level)
    with pytest.raises(InvalidTask, match="first argument of 'context'"):
        task(takes_context=True)(module_level)
    with pytest.raises(InvalidTask, match="aware"):
        django_tasks.double.using(run_after=datetime.datetime(2030, 1, 1))


def test_using_keeps_the_backend_options(django_db: str) -> None:
    """``using(priority=...)`` maps to the job's priority."""
    result = django_tasks.double.using(priority=-100).enqueue(1)

    job = app.job_manager.get_job(int(result.id))
    assert job is not None
    assert job.priority == -100
