"""The plans of the claim statements on a big table: the ready-set index, not
a scan and sort of every ready job.

A plan, not a timing: a claim that sorts the whole ready set costs 47 ms
instead of 0.2 ms at 100,000 jobs, and this once came from a filter the
planner misjudged (paused queues, with one queue name in the table).
"""

from __future__ import annotations

import json
import re
from typing import Any

import psycopg
import pytest

from procrastinate_anyio._sql import queries

JOBS = 20_000


def _positional(sql: str, params: dict[str, Any]) -> tuple[str, list[Any]]:
    """``%(name)s`` placeholders as ``%s`` with their values in order."""
    values: list[Any] = []

    def sub(match: re.Match[str]) -> str:
        values.append(params[match.group(1)])
        return "%s"

    return re.sub(r"%\((\w+)\)s", sub, sql), values


def _nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    out = [plan]
    for child in plan.get("Plans", []):
        out += _nodes(child)
    return out


@pytest.fixture
def big_table(pg_template: str, new_database: Any) -> str:
    """A database whose table holds JOBS ready jobs of one queue."""
    dsn: str = new_database(pg_template)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO pa_jobs (queue_name, task_name, args, status) "
            "SELECT 'default', 'noop', '{}', 'todo' FROM generate_series(1, %s)",
            [JOBS],
        )
        conn.execute("ANALYZE pa_jobs")
    return dsn


@pytest.mark.parametrize("paused", [False, True], ids=["none paused", "one paused"])
@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("job_fetch_many", {"worker_id": 1, "limit": 100}),
        (
            "job_fetch_many_queues",
            {"worker_id": 1, "limit": 100, "queues": ["default"]},
        ),
        ("job_next_scheduled_at", {"queues": None}),
    ],
)
def test_claims_read_an_index(
    big_table: str, name: str, params: dict[str, Any], paused: bool
) -> None:
    sql, values = _positional(queries()[name], params)
    with psycopg.connect(big_table) as conn:  # rolled back: nothing claimed
        if paused:
            conn.execute("INSERT INTO pa_queue_pauses (queue_name) VALUES ('other')")
        row = conn.execute(f"EXPLAIN (FORMAT JSON) {sql}", values).fetchone()
        assert row is not None
        plan = (row[0] if isinstance(row[0], list) else json.loads(row[0]))[0]["Plan"]
    scans = [
        node
        for node in _nodes(plan)
        if node.get("Relation Name") == "pa_jobs" and node["Node Type"] == "Seq Scan"
    ]
    assert scans == [], json.dumps(plan, indent=1)
