"""Tests of the connector records."""

from __future__ import annotations

import datetime

import attrs

from procrastinate_anyio import JobError, Status
from procrastinate_anyio.connectors import JobOutcome

WHEN = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)


def test_of_attempt_is_evolve() -> None:
    """``of_attempt`` copies every field (a field added later must be added
    there too: this fails until it is)."""
    outcome = JobOutcome(
        job_id=1,
        status=Status.TODO,
        lock="l",
        worker_id=2,
        result={"r": 1},
        error=JobError(type="E", message="m", traceback="t"),
        retry_at=WHEN,
        retry_priority=3,
        retry_queue="q",
        retry_lock="rl",
        delete_job=False,
        started_at=None,
        recovered=True,
        released=True,
    )
    # Every field has a value other than its default.
    defaults = {f.name: f.default for f in attrs.fields(JobOutcome)}
    assert all(
        getattr(outcome, name) != default
        for name, default in defaults.items()
        if name not in {"delete_job", "started_at", "worker_id"}
    )

    assert outcome.of_attempt(worker_id=7, started_at=WHEN, delete_job=True) == (
        attrs.evolve(outcome, worker_id=7, started_at=WHEN, delete_job=True)
    )
