"""The example project's tests, run by Django's test runner
(``./manage.py test``) against PostgreSQL."""

from __future__ import annotations

import datetime

from django.test import TransactionTestCase
from django.utils import timezone

from procrastinate_anyio import Status
from procrastinate_anyio.contrib.django import app

from .models import Note
from .tasks import delete_old_notes


class NoteTests(TransactionTestCase):
    # The worker reads jobs on its own connections: they must be committed,
    # hence TransactionTestCase and not TestCase.

    def test_view_defers_and_worker_counts_words(self) -> None:
        """The view defers in its transaction; the worker runs the ORM task."""
        response = self.client.post("/notes/", {"text": "three little words"})
        assert response.status_code == 201

        app.run_worker_sync(wait=False, install_signal_handlers=False)

        note = Note.objects.get(id=response.json()["note_id"])
        assert note.words == 3
        job = app.job_manager.get_job(response.json()["job_id"])
        assert job is not None
        assert (job.status, job.result) == (Status.SUCCEEDED, 3)

    def test_periodic_task_deletes_old_notes(self) -> None:
        """The nightly task is scheduled, and deletes notes past 30 days."""
        crons = {p.task.name: p.cron for p in app.periodic_tasks}
        assert crons[delete_old_notes.name] == "0 3 * * *"
        old = Note.objects.create(text="old")
        Note.objects.filter(id=old.id).update(
            created_at=timezone.now() - datetime.timedelta(days=31)
        )
        Note.objects.create(text="new")

        deleted = delete_old_notes(int(timezone.now().timestamp()))

        assert deleted == 1
        assert list(Note.objects.values_list("text", flat=True)) == ["new"]


class DjangoTasksTests(TransactionTestCase):
    def test_django_task_runs_on_the_worker(self) -> None:
        """A ``django.tasks`` task is enqueued as a job and run (Django 6+)."""
        try:
            from .django_tasks import shout
        except ImportError:  # Django < 6: no django.tasks
            self.skipTest("django.tasks needs Django 6")
        from django.tasks import TaskResultStatus

        note = Note.objects.create(text="quiet")
        result = shout.enqueue(note.id)

        app.run_worker_sync(wait=False, install_signal_handlers=False)

        result.refresh()
        assert result.status == TaskResultStatus.SUCCESSFUL
        assert result.return_value == "QUIET"
