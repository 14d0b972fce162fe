"""A worker subprocess (``procrastinate-anyio worker``) under SIGTERM and SIGINT,
on asyncio and trio.

The app is ``tests/acceptance/worker_app.py``. No event crosses processes, so
the test polls, with short waits and a bounded deadline: the database for a
job's status, the worker's log for the line saying it got a signal.
"""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys
import time
from typing import IO, TYPE_CHECKING

import psycopg
import pytest

import procrastinate_anyio as pa
from procrastinate_anyio import Status

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

ROOT = pathlib.Path(__file__).resolve().parents[2]
DEADLINE_SECONDS = 15
POLL_SECONDS = 0.02

SUBPROCESS_BACKENDS = [
    pytest.param("asyncio", id="worker-asyncio"),
    pytest.param("trio", id="worker-trio"),
]


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(POLL_SECONDS)


class WorkerProcess:
    """A worker subprocess, its log, and the app's view of its database."""

    def __init__(self, dsn: str, backend: str, log_path: pathlib.Path) -> None:
        self.dsn = dsn
        self.log_path = log_path
        # Deferred by name: the test process never imports worker_app.
        self.app = pa.App(connector=pa.PsycopgConnector(dsn))
        self._log: IO[str] = log_path.open("w")
        env = {**os.environ, "PA_WORKER_TEST_DSN": dsn}
        env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])
        )
        self.process = subprocess.Popen(
            [
                *(sys.executable, "-m", "procrastinate_anyio", "-v"),
                *("--app", "tests.acceptance.worker_app.app", "worker"),
                *("--backend", backend, "--shutdown-graceful-timeout", "60"),
            ],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=self._log,
        )

    def defer(self, task: str, **kwargs: object) -> int:
        with self.app.open():
            return self.app.configure_task(task, task_kwargs=kwargs).defer()

    def status(self, job_id: int) -> Status:
        with self.app.open():
            job = self.app.job_manager.get_job(job_id)
        assert job is not None
        return job.status

    def workers(self) -> int:
        with psycopg.connect(self.dsn) as conn:
            row = conn.execute("SELECT count(*) FROM pa_workers").fetchone()
        assert row is not None
        return int(row[0])

    def log(self) -> str:
        return self.log_path.read_text()

    def signal(self, signum: signal.Signals) -> None:
        self.process.send_signal(signum)
        wait_until(
            lambda: f"Received {signum.name}" in self.log(),
            f"the worker to log {signum.name}",
        )

    def wait(self) -> int:
        try:
            return self.process.wait(timeout=DEADLINE_SECONDS)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the worker did not exit:\n{self.log()}")

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._log.close()


@pytest.fixture
def start_worker(
    pg_dsn: str, tmp_path: pathlib.Path
) -> Iterator[Callable[[str], WorkerProcess]]:
    started: list[WorkerProcess] = []

    def start(backend: str) -> WorkerProcess:
        worker = WorkerProcess(pg_dsn, backend, tmp_path / "worker.log")
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.close()


@pytest.mark.parametrize("backend", SUBPROCESS_BACKENDS)
@pytest.mark.parametrize(
    ("task", "final"),
    [
        pytest.param("forever", Status.ABORTED, id="aborted"),
        pytest.param("forever_retry", Status.TODO, id="retry-todo"),
        pytest.param("forever_sync", Status.ABORTED, id="sync-aborted"),
    ],
)
def test_sigterm_waits_then_sigint_cancels(start_worker, backend, task, final):
    """SIGTERM lets the running job go on; SIGINT then cancels it and the worker exits."""
    worker = start_worker(backend)
    job_id = worker.defer(task)
    wait_until(lambda: worker.status(job_id) is Status.DOING, "the job to start")

    worker.signal(signal.SIGTERM)
    assert worker.process.poll() is None
    assert worker.status(job_id) is Status.DOING

    worker.signal(signal.SIGINT)
    assert worker.wait() == 0, worker.log()
    assert worker.status(job_id) is final
    assert worker.workers() == 0


@pytest.mark.parametrize("backend", SUBPROCESS_BACKENDS)
def test_sigterm_lets_the_running_job_succeed(start_worker, tmp_path, backend):
    """After SIGTERM a running job that ends in time succeeds; the worker exits 0."""
    release = tmp_path / "release"
    worker = start_worker(backend)
    job_id = worker.defer("wait_for_file", path=str(release))
    wait_until(lambda: worker.status(job_id) is Status.DOING, "the job to start")

    worker.signal(signal.SIGTERM)
    release.touch()
    assert worker.wait() == 0, worker.log()
    assert worker.status(job_id) is Status.SUCCEEDED
    assert worker.workers() == 0
