"""Tests of the JSON documents the PostgreSQL connector sends with its
batched statements."""

from __future__ import annotations

import datetime
import json

from procrastinate_anyio import Status
from procrastinate_anyio.connectors import JobOutcome
from procrastinate_anyio.connectors.postgres._ops import _outcomes_document

T1 = datetime.datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=datetime.timezone.utc)
T2 = T1 + datetime.timedelta(microseconds=1)


def test_each_outcome_carries_its_own_attempt_token() -> None:
    """Outcomes of one claim share their started_at, of others not, in any
    order: each row has its own, to the microsecond."""
    tokens = [T1, T1, T2, T1, None, T2]
    outcomes = [
        JobOutcome(job_id=i, status=Status.SUCCEEDED, worker_id=1, started_at=token)
        for i, token in enumerate(tokens)
    ]
    rows = json.loads(_outcomes_document(outcomes))
    assert [row.get("started_at") for row in rows] == [
        None if token is None else token.isoformat() for token in tokens
    ]
    assert [row["id"] for row in rows] == list(range(len(tokens)))
