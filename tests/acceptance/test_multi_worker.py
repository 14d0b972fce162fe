"""Several worker processes on one database, as operators run them:
``python -m procrastinate_anyio --app tests.acceptance.multi_app.app worker``,
on asyncio and trio side by side. Then the ``shell`` command against it.

There is no event to await across processes: the tests poll the database
in bounded loops, and assert on what the jobs recorded, never on timings.
"""

from __future__ import annotations

import itertools
import os
import pathlib
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

import procrastinate_anyio as pa

from .multi_app import DSN_ENV_VAR, PERIODIC_ENV_VAR

pytestmark = pytest.mark.slow

ROOT = pathlib.Path(__file__).resolve().parents[2]
APP_PATH = "tests.acceptance.multi_app.app"
DEADLINE_SECONDS = 30
BACKENDS = itertools.cycle(["asyncio", "trio"])


def environment(dsn: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROCRASTINATE_")}
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(ROOT), env.get("PYTHONPATH")])
    )
    env[DSN_ENV_VAR] = dsn
    env.update(extra)
    return env


Start = Callable[..., subprocess.Popen[str]]


@pytest.fixture
def start_worker(pg_dsn: str, tmp_path: pathlib.Path) -> Iterator[Start]:
    """Start worker processes (alternately on asyncio and trio); any still
    running at the end of the test is killed, and failures show their logs."""
    started: list[tuple[subprocess.Popen[str], pathlib.Path]] = []

    def start(**env: str) -> subprocess.Popen[str]:
        log = tmp_path / f"worker-{len(started)}.log"
        command = [sys.executable, "-m", "procrastinate_anyio", "-v", "--app", APP_PATH]
        command += ["worker", "--backend", next(BACKENDS), "-n", f"w{len(started)}"]
        with log.open("w") as out:
            process = subprocess.Popen(
                command,
                env=environment(pg_dsn, **env),
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
            )
        started.append((process, log))
        return process

    try:
        yield start
    finally:
        for process, log in started:
            if process.poll() is None:
                process.kill()
                process.wait()
            sys.stderr.write(f"--- {log.name} ---\n{log.read_text()[-3000:]}\n")


def stop(*processes: subprocess.Popen[str]) -> None:
    """SIGTERM: a graceful stop; each worker must exit 0."""
    for process in processes:
        process.send_signal(signal.SIGTERM)
    for process in processes:
        assert process.wait(timeout=DEADLINE_SECONDS) == 0


def query(dsn: str, sql: str, *params: Any) -> list[dict[str, Any]]:
    with psycopg.connect(dsn, autocommit=True, row_factory=dict_row) as conn:
        return conn.execute(sql, params or None).fetchall()


def wait_until(
    dsn: str, sql: str, done: Callable[[list[dict[str, Any]]], bool]
) -> None:
    """Poll the database until ``done(rows of sql)``, for DEADLINE_SECONDS at most."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not done(query(dsn, sql)):
        assert time.monotonic() < deadline, f"gave up waiting for: {sql}"
        time.sleep(0.05)


def app_on(dsn: str) -> pa.App:
    return pa.App(connector=pa.PsycopgConnector(dsn))


def test_lock_line_across_workers(pg_dsn: str, start_worker: Start) -> None:
    """Three workers run 30 jobs of one lock one at a time, by priority then id."""
    app = app_on(pg_dsn)
    with app.open():
        for n in range(30):
            app.configure_task("record", lock="line", priority=n % 4).defer(n=n)
    workers = [start_worker() for _ in range(3)]

    wait_until(
        pg_dsn,
        "SELECT count(*) AS n FROM pa_jobs WHERE status = 'succeeded'",
        lambda rows: rows[0]["n"] == 30,
    )
    stop(*workers)

    jobs = query(pg_dsn, "SELECT id, priority, result FROM pa_jobs")
    by_start = sorted(jobs, key=lambda job: job["result"]["start"])
    for before, after in itertools.pairwise(by_start):
        assert before["result"]["end"] <= after["result"]["start"]
    expected = sorted(jobs, key=lambda job: (-job["priority"], job["id"]))
    assert [job["id"] for job in by_start] == [job["id"] for job in expected]


def test_periodic_ticks_once_across_workers(pg_dsn: str, start_worker: Start) -> None:
    """Three workers with an every-second periodic task defer each tick once."""
    started_at = time.time()
    workers = [start_worker(**{PERIODIC_ENV_VAR: "1"}) for _ in range(3)]

    wait_until(
        pg_dsn,
        "SELECT count(*) AS n FROM pa_jobs WHERE task_name = 'tick'",
        lambda rows: rows[0]["n"] >= 4,
    )
    stop(*workers)

    rows = query(pg_dsn, "SELECT args->'timestamp' AS tick FROM pa_jobs ORDER BY 1")
    ticks = [row["tick"] for row in rows]
    assert len(ticks) == len(set(ticks)), ticks
    # max_delay=1: no catch-up from before the workers started.
    assert ticks[0] >= int(started_at) - 1


def test_killed_worker_job_runs_again(pg_dsn: str, start_worker: Start) -> None:
    """A job of a worker killed with SIGKILL runs again on another worker."""
    app = app_on(pg_dsn)
    with app.open():
        job_id = app.configure_task("stalls_once").defer()
    first = start_worker()
    wait_until(
        pg_dsn,
        "SELECT status::text FROM pa_jobs",
        lambda rows: rows[0]["status"] == "doing",
    )

    first.kill()
    first.wait()
    second = start_worker()
    wait_until(
        pg_dsn,
        "SELECT status::text FROM pa_jobs",
        lambda rows: rows[0]["status"] == "succeeded",
    )
    stop(second)

    with app.open():
        job = app.job_manager.get_job(job_id)
    assert job is not None
    assert (job.attempts, job.result) == (2, "second attempt")
    assert job.error is None


def test_paused_worker_outcome_is_refused(
    pg_dsn: str, start_worker: Start, tmp_path: pathlib.Path
) -> None:
    """A worker paused (SIGSTOP) past the stalled timeout loses its job to
    another worker; resumed (SIGCONT), its late outcome is refused and logged,
    and it goes on working."""
    app = app_on(pg_dsn)
    with app.open():
        job_id = app.configure_task("paused_once").defer()
    paused = start_worker()
    wait_until(
        pg_dsn,
        "SELECT status::text FROM pa_jobs",
        lambda rows: rows[0]["status"] == "doing",
    )
    paused.send_signal(signal.SIGSTOP)
    try:
        other = start_worker()
        wait_until(
            pg_dsn,
            "SELECT status::text FROM pa_jobs",
            lambda rows: rows[0]["status"] == "succeeded",
        )
    finally:
        paused.send_signal(signal.SIGCONT)
    log = tmp_path / "worker-0.log"
    deadline = time.monotonic() + DEADLINE_SECONDS
    while "completer_outcome_refused" not in log.read_text():
        assert time.monotonic() < deadline, "the stale outcome was not refused"
        time.sleep(0.05)
    with app.open():
        again = app.configure_task("record", lock="line").defer(n=1)
    wait_until(
        pg_dsn,
        f"SELECT status::text FROM pa_jobs WHERE id = {again}",
        lambda rows: rows[0]["status"] == "succeeded",
    )
    stop(paused, other)

    with app.open():
        job = app.job_manager.get_job(job_id)
    assert job is not None
    assert (job.status, job.result, job.recoveries) == (
        pa.Status.SUCCEEDED,
        "after recovery",
        1,
    )


def test_job_that_kills_its_worker_fails_after_the_bound(
    pg_dsn: str, start_worker: Start
) -> None:
    """A job that kills its worker every time is recovered
    ``max_crash_recoveries`` (1 here) times, then fails with an error that
    says so; the worker that fails it lives on."""
    app = app_on(pg_dsn)
    with app.open():
        job_id = app.configure_task("kills_its_worker").defer()
    for _ in range(2):  # the first run, then the one recovery allowed
        victim = start_worker()
        assert victim.wait(timeout=DEADLINE_SECONDS) == -signal.SIGKILL
    survivor = start_worker()
    wait_until(
        pg_dsn,
        "SELECT status::text FROM pa_jobs",
        lambda rows: rows[0]["status"] == "failed",
    )
    assert survivor.poll() is None
    stop(survivor)

    with app.open():
        job = app.job_manager.get_job(job_id)
    assert job is not None
    assert job.recoveries == 2
    assert job.error is not None
    assert "more than max_crash_recoveries (1)" in job.error.message


def run_shell(dsn: str, *args: str, stdin: str = "") -> str:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "procrastinate_anyio",
            "--app",
            APP_PATH,
            "shell",
            *args,
        ],
        input=stdin,
        capture_output=True,
        text=True,
        env=environment(dsn),
        cwd=ROOT,
        timeout=DEADLINE_SECONDS,
        check=False,
    )
    assert (result.returncode, result.stderr) == (0, "")
    return result.stdout


def test_shell(pg_dsn: str) -> None:
    """``shell`` runs one command and exits, or reads commands from stdin."""
    app = app_on(pg_dsn)
    with app.open():
        failed = app.configure_task("elsewhere", queue="q").defer()
        app.job_manager.cancel_job_by_id(failed)
        app.configure_task("record", lock="line").defer(n=1)

    assert run_shell(pg_dsn, "list_jobs", "status=cancelled") == (
        f"#{failed} elsewhere on q - [cancelled]\n"
    )

    out = run_shell(pg_dsn, stdin=f"retry {failed}\nlist_queues\nlist_locks\n")

    assert f"#{failed} elsewhere on q - [todo]" in out
    assert "default: 1 jobs (todo: 1, doing: 0," in out
    assert "q: 1 jobs (todo: 1, doing: 0," in out
    assert "line: 1 jobs (todo: 1," in out
