"""The admin, through Django's test client: lists, filters, search, the job
page and every action."""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING

import anyio
import pytest
from django.contrib.auth.models import User
from django.db import connections
from django.test import Client
from django.utils import timezone

from procrastinate_anyio import Status
from procrastinate_anyio.contrib.django import app
from procrastinate_anyio.contrib.django.models import Job, ReadOnlyError

from .testapp.tasks import STARTED, add, block_until_aborted, fail

if TYPE_CHECKING:
    from django.http import HttpResponse

JOBS = "/admin/procrastinate_anyio/job/"


@pytest.fixture
def client(django_db: str) -> Client:
    """A client logged in as a superuser."""
    User.objects.create_superuser("admin", "admin@example.com", "pw")
    client = Client()
    client.force_login(User.objects.get(username="admin"))
    return client


def run_jobs() -> None:
    app.run_worker_sync(wait=False)


def act(client: Client, action: str, *ids: int) -> HttpResponse:
    return client.post(
        JOBS, {"action": action, "_selected_action": [str(i) for i in ids]}, follow=True
    )


def status(job_id: int) -> Status:
    job = app.job_manager.get_job(job_id)
    assert job is not None
    return job.status


def test_list_filters_and_search(client: Client) -> None:
    """The list filters by status, queue and task, and searches the task,
    locks and arguments."""
    add.configure(lock="lock-a").defer(a=1, b=2)
    add.configure(queue="other", queueing_lock="ql-b").defer(a=3, b=4)
    fail.defer(message="needle-in-args")

    def listed(**params: str) -> int:
        response = client.get(JOBS, params)
        assert response.status_code == 200
        return int(response.context["cl"].result_count)

    assert listed() == 3
    assert listed(status__exact="todo") == 3
    assert listed(queue_name__exact="other") == 1
    assert listed(task_name__exact=fail.name) == 1
    assert listed(q="lock-a") == 1
    assert listed(q="ql-b") == 1
    assert listed(q="needle-in-args") == 1
    assert listed(q=add.name) == 2


def test_summary_per_queue_and_status(client: Client) -> None:
    """Above the list, a table counts jobs per queue and status."""
    add.defer(a=1, b=2)
    add.configure(queue="other").defer(a=1, b=2)

    response = client.get(JOBS)

    summary = dict(response.context["queue_summary"])
    todo = response.context["queue_statuses"].index("todo")
    assert summary["default"][todo] == 1
    assert summary["other"][todo] == 1
    assert b'id="queue-summary"' in response.content


def test_job_page(client: Client) -> None:
    """A job's page shows its arguments, error, traceback, timestamps and
    attempts, and cannot be edited."""
    job_id = fail.defer(message="it broke")
    run_jobs()

    response = client.get(f"{JOBS}{job_id}/change/")

    assert response.status_code == 200
    page = response.content.decode()
    for text in ("it broke", "ValueError", "Traceback", "Attempts", "Finished at"):
        assert text in page
    assert 'name="_save"' not in page


def test_retry_action(client: Client) -> None:
    """Retry puts a failed job back to todo; a waiting job is skipped."""
    failed = fail.defer(message="x")
    run_jobs()
    waiting = add.defer(a=1, b=2)

    response = act(client, "retry", failed, waiting)

    assert status(failed) is Status.TODO
    assert status(waiting) is Status.TODO
    assert b"Retried 1 job(s)." in response.content
    assert b"could not be retried" in response.content


def test_cancel_action(client: Client) -> None:
    """Cancel cancels a waiting job; a finished one is skipped."""
    waiting = add.defer(a=1, b=2)
    failed = fail.defer(message="x")
    run_jobs()
    waiting_again = add.defer(a=5, b=6)

    response = act(client, "cancel", waiting_again, failed)

    assert status(waiting_again) is Status.CANCELLED
    assert status(failed) is Status.FAILED
    assert status(waiting) is Status.SUCCEEDED
    assert b"Cancelled 1 job(s)." in response.content


def test_abort_action(client: Client) -> None:
    """Abort cancels a job that has not started (and asks running ones to
    stop, which the worker tests cover)."""
    waiting = add.defer(a=1, b=2)

    response = act(client, "abort", waiting)

    assert status(waiting) is Status.CANCELLED
    assert b"Aborted 1 job(s)." in response.content


def test_run_now_action(client: Client) -> None:
    """Run now makes a job scheduled for later due at once; a worker then
    runs it."""
    later = add.configure(schedule_in={"hours": 1}).defer(a=1, b=2)
    now = add.defer(a=3, b=4)
    before = timezone.now()

    response = act(client, "run_now", later, now)

    job = app.job_manager.get_job(later)
    assert job is not None
    assert job.scheduled_at is not None
    assert before <= job.scheduled_at <= timezone.now() + datetime.timedelta(seconds=1)
    assert b"Scheduled 1 job(s) to run now." in response.content
    run_jobs()
    assert status(later) is Status.SUCCEEDED


def test_actions_need_the_change_permission(django_db: str) -> None:
    """A staff user who may only view jobs sees no action and changes nothing."""
    from django.contrib.auth.models import Permission

    user = User.objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_job"))
    client = Client()
    client.force_login(user)
    waiting = add.defer(a=1, b=2)

    listing = client.get(JOBS)
    act(client, "cancel", waiting)

    assert listing.status_code == 200
    assert b'name="action"' not in listing.content
    assert status(waiting) is Status.TODO


def test_workers_and_migrations_pages(client: Client) -> None:
    """The workers and migrations lists show."""
    assert client.get("/admin/procrastinate_anyio/worker/").status_code == 200
    response = client.get("/admin/procrastinate_anyio/schemamigration/")
    assert b"0.1.0_01_pre_initial.sql" in response.content


def test_models_are_read_only(django_db: str) -> None:
    """Saving or deleting a job through the model is refused."""
    add.defer(a=1, b=2)
    job = Job.objects.get()

    with pytest.raises(ReadOnlyError):
        job.save()
    with pytest.raises(ReadOnlyError):
        job.delete()
    assert Job.objects.get().status == "todo"


async def test_abort_action_stops_a_running_job(
    client: Client, anyio_backend: str
) -> None:
    """Abort on a running job stops it: it ends ``aborted``."""
    started = anyio.Event()
    STARTED[:] = [started]

    def defer_block() -> int:
        try:
            return block_until_aborted.defer()
        finally:
            connections.close_all()

    def abort(job_id: int) -> bytes:
        try:
            return bytes(act(client, "abort", job_id).content)
        finally:
            connections.close_all()

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            await tg.start(app.run_worker)
            job_id = await anyio.to_thread.run_sync(defer_block)
            await started.wait()
            page = await anyio.to_thread.run_sync(abort, job_id)
            job = await app.job_manager.wait_for_job_async(job_id)
            tg.cancel_scope.cancel()

    assert b"Aborted 1 job(s)." in page
    assert job.status is Status.ABORTED
