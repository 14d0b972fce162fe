"""``procrastinate-anyio queue pause | resume | list``, run for real."""

from __future__ import annotations

import pytest

from .test_cli import assert_user_error, deferred_id, run_cli


def test_pause_list_resume(pg_dsn: str) -> None:
    """An operator pauses a queue, sees it in the list with its jobs, and
    resumes it; repeating a step says nothing changed."""
    deferred_id(run_cli("defer", "sum", '{"a": 1, "b": 2}', dsn=pg_dsn))

    paused = run_cli("queue", "pause", "default", dsn=pg_dsn)
    again = run_cli("queue", "pause", "default", dsn=pg_dsn)
    listed = run_cli("queue", "list", dsn=pg_dsn)
    resumed = run_cli("queue", "resume", "default", dsn=pg_dsn)
    not_paused = run_cli("queue", "resume", "default", dsn=pg_dsn)
    after = run_cli("queue", "list", dsn=pg_dsn)

    assert [r.returncode for r in (paused, again, listed, resumed, not_paused)] == [
        0
    ] * 5
    assert paused.stdout == "Paused queue default\n"
    assert again.stdout == "Queue default was paused already\n"
    assert listed.stdout.startswith("default: paused since ")
    assert listed.stdout.endswith(", 1 todo, 0 doing\n")
    assert resumed.stdout == "Resumed queue default\n"
    assert not_paused.stdout == "Queue default was not paused\n"
    assert after.stdout == "default: active, 1 todo, 0 doing\n"


def test_a_paused_queue_with_no_job_is_listed(pg_dsn: str) -> None:
    """A paused queue shows even before it has jobs; nothing at all says so."""
    assert run_cli("queue", "list", dsn=pg_dsn).stdout == (
        "No queue has jobs or is paused\n"
    )
    run_cli("queue", "pause", "reports", dsn=pg_dsn)

    assert run_cli("queue", "list", dsn=pg_dsn).stdout.startswith("reports: paused")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        pytest.param(("queue", "pause", ""), "queue must be 1 to 255", id="empty"),
        pytest.param(
            ("queue", "pause", "x" * 300), "queue must be 1 to 255", id="long"
        ),
    ],
)
def test_bad_queue_names(pg_dsn: str, args: tuple[str, ...], fragment: str) -> None:
    """A queue name the database cannot hold is one line and exit 1."""
    assert_user_error(run_cli(*args, dsn=pg_dsn), fragment)


def test_usage_errors() -> None:
    """A missing action or name is a usage error (exit 2)."""
    assert run_cli("queue").returncode == 2
    assert run_cli("queue", "pause").returncode == 2
