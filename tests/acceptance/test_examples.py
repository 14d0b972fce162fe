"""The programs of ``examples/``, run as a user runs them: real servers
(uvicorn, hypercorn on asyncio and on Trio) on a socket of 127.0.0.1, real
HTTP requests, a signal to stop, and the database checked afterwards: the
jobs ran, none is left ``doing``, no worker is left registered.

Each server gets a socket that the test bound and listens on (``--fd``,
``fd://``), so there is no port to race for, and a request sent before the
server is ready waits in the backlog until it is: no readiness polling. No
event crosses processes, so the rest polls with short waits and a bounded
deadline, as ``test_worker_signals.py`` does.
"""

from __future__ import annotations

import collections
import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import time
from typing import IO, TYPE_CHECKING

import httpx
import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

ROOT = pathlib.Path(__file__).resolve().parents[2]
DEADLINE_SECONDS = 20
POLL_SECONDS = 0.02

pytestmark = pytest.mark.slow


def uvicorn(fd: int, target: str) -> list[str]:
    return [sys.executable, "-m", "uvicorn", "--fd", str(fd), target]


def hypercorn_asyncio(fd: int, target: str) -> list[str]:
    return [sys.executable, "-m", "hypercorn", "--bind", f"fd://{fd}", target]


def hypercorn_trio(fd: int, target: str) -> list[str]:
    return [*hypercorn_asyncio(fd, target), "--worker-class", "trio"]


ALL_SERVERS = [
    pytest.param(uvicorn, id="uvicorn"),
    pytest.param(hypercorn_asyncio, id="hypercorn-asyncio"),
    pytest.param(hypercorn_trio, id="hypercorn-trio"),
]


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(POLL_SECONDS)


def job_statuses(dsn: str) -> collections.Counter[str]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT status::text, count(*) FROM pa_jobs GROUP BY 1"
        ).fetchall()
    return collections.Counter(dict(rows))


def registered_workers(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM pa_workers").fetchone()
    assert row is not None
    return int(row[0])


class Program:
    """A subprocess of ``examples/`` (or of a test app), its output in a file."""

    def __init__(
        self,
        command: list[str],
        dsn: str,
        log_path: pathlib.Path,
        pass_fds: tuple[int, ...] = (),
    ) -> None:
        self.log_path = log_path
        self._log: IO[str] = log_path.open("w")
        env = {**os.environ, "PA_DSN": dsn, "PYTHONUNBUFFERED": "1"}
        env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])
        )
        self.process = subprocess.Popen(
            command,
            env=env,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            pass_fds=pass_fds,
        )

    def log(self) -> str:
        return self.log_path.read_text()

    def wait(self) -> int:
        try:
            return self.process.wait(timeout=DEADLINE_SECONDS)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the program did not exit:\n{self.log()}")

    def stop(self, signum: signal.Signals) -> int:
        self.process.send_signal(signum)
        return self.wait()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._log.close()


class Server(Program):
    """An ASGI server serving ``target`` on a socket bound by the test."""

    def __init__(
        self,
        server: Callable[[int, str], list[str]],
        target: str,
        dsn: str,
        log_path: pathlib.Path,
    ) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            sock.listen(16)
            sock.set_inheritable(True)
            port = sock.getsockname()[1]
            fd = sock.fileno()
            super().__init__(server(fd, target), dsn, log_path, pass_fds=(fd,))
        # Closed here: if the server dies, requests fail instead of hanging.
        self.client = httpx.Client(
            base_url=f"http://127.0.0.1:{port}", timeout=DEADLINE_SECONDS
        )

    def close(self) -> None:
        self.client.close()
        super().close()


@pytest.fixture
def run(pg_dsn: str, tmp_path: pathlib.Path) -> Iterator[Callable[..., Program]]:
    """Start an example, as ``run(*argv)`` (a Python script and its arguments)
    or ``run(server=..., target="module:app")``; stopped after the test."""
    started: list[Program] = []

    def start(
        *argv: str,
        server: Callable[[int, str], list[str]] | None = None,
        target: str = "",
    ) -> Program:
        log_path = tmp_path / f"program-{len(started)}.log"
        program: Program
        if server is None:
            program = Program([sys.executable, *argv], pg_dsn, log_path)
        else:
            program = Server(server, target, pg_dsn, log_path)
        started.append(program)
        return program

    yield start
    for program in started:
        program.close()


@pytest.mark.parametrize("server", ALL_SERVERS)
def test_fastapi_app(run, pg_dsn, server):
    """FastAPI with the lifespan helper: a job's result over HTTP, a batch, a clean stop."""
    web = run(server=server, target="examples.fastapi_app:web")
    assert isinstance(web, Server)

    response = web.client.get("/add", params={"a": 2, "b": 3})
    assert response.json()["result"] == 5, web.log()
    ids = web.client.post("/squares", params={"count": 50}).json()["jobs"]
    assert len(ids) == 50
    wait_until(
        lambda: job_statuses(pg_dsn)["succeeded"] == 51, "the batch's jobs to run"
    )
    assert web.client.get(f"/jobs/{ids[-1]}").json()["result"] == 49 * 49

    assert web.stop(signal.SIGINT) == 0, web.log()
    assert job_statuses(pg_dsn) == {"succeeded": 51}
    assert registered_workers(pg_dsn) == 0


def test_starlette_trio_app(run, pg_dsn):
    """Starlette on hypercorn's Trio worker: views and worker run on Trio; SIGTERM stops both."""
    web = run(server=hypercorn_trio, target="examples.starlette_trio_app:web")
    assert isinstance(web, Server)

    body = web.client.get("/report", params={"title": "Q3"}).json()
    assert body["status"] == "succeeded", web.log()
    assert body["result"]["title"] == "Q3"
    assert body["result"]["event_loop"] == body["view_event_loop"] == "trio"

    assert web.stop(signal.SIGTERM) == 0, web.log()
    assert job_statuses(pg_dsn) == {"succeeded": 1}
    assert registered_workers(pg_dsn) == 0


def test_quart_trio_app(run, pg_dsn):
    """Quart-Trio on hypercorn's Trio worker: the worker runs in the app's
    nursery; SIGTERM stops both gracefully."""
    web = run(server=hypercorn_trio, target="examples.quart_trio_app:web")
    assert isinstance(web, Server)

    body = web.client.get("/report", params={"title": "Q4"}).json()
    assert body["status"] == "succeeded", web.log()
    assert body["result"]["title"] == "Q4"
    assert body["result"]["event_loop"] == body["view_event_loop"] == "trio"

    assert web.stop(signal.SIGTERM) == 0, web.log()
    assert job_statuses(pg_dsn) == {"succeeded": 1}
    assert registered_workers(pg_dsn) == 0


@pytest.mark.parametrize(
    "server",
    [pytest.param(uvicorn, id="uvicorn"), pytest.param(hypercorn_trio, id="trio")],
)
def test_a_failing_worker_stops_the_server(run, pg_dsn, server):
    """When the lifespan's worker dies, the server shuts down by itself, loudly."""
    web = run(server=server, target="tests.acceptance.failing_asgi_app:web")
    assert isinstance(web, Server)

    assert web.client.get("/break").text == "broken"
    web.wait()  # no signal sent: the helper stops the server
    assert "the heartbeat broke" in web.log()
    assert "The worker failed: stopping the server" in web.log()
    assert registered_workers(pg_dsn) == 0


def test_trio_app(run, pg_dsn):
    """The Trio program runs its jobs next to its own work and stops cleanly on Ctrl-C."""
    program = run("examples/trio_app.py", "--jobs", "30")
    wait_until(lambda: "jobs done" in program.log(), "the jobs to be done")
    assert "30 jobs done, sum of squares 8555" in program.log()

    assert program.stop(signal.SIGINT) == 0, program.log()
    assert "stopped: 30 jobs succeeded" in program.log()
    assert job_statuses(pg_dsn) == {"succeeded": 30}
    assert registered_workers(pg_dsn) == 0


def test_sync_script(run, pg_dsn):
    """A script defers with no event loop and reads results; a worker process runs the jobs."""
    worker = run("examples/sync_script.py", "worker")
    script = run("examples/sync_script.py", "defer", "1", "2", "3")
    assert script.wait() == 0, script.log() + worker.log()
    assert "(n=3) -> succeeded: 6" in script.log()

    assert worker.stop(signal.SIGTERM) == 0, worker.log()
    assert job_statuses(pg_dsn) == {"succeeded": 3}
    assert registered_workers(pg_dsn) == 0


def prometheus_samples(url: str) -> dict[tuple[str, str, str], float]:
    """The procrastinate_anyio samples at ``url``, by (name, status label,
    queue label)."""
    text = httpx.get(url, timeout=DEADLINE_SECONDS).text
    return {
        (
            sample.name,
            sample.labels.get("procrastinate_anyio_job_status", ""),
            sample.labels.get("messaging_destination_name", ""),
        ): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name.startswith("procrastinate_anyio_")
    }


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_opentelemetry_prometheus(run, pg_dsn, backend):
    """The OpenTelemetry example serves its worker's metrics to Prometheus:
    jobs deferred, started and finished by status, the run duration and queue
    wait histograms, and the queue depths, scraped over HTTP."""
    program = run(
        "examples/opentelemetry_prometheus.py",
        *("--port", "0", "--jobs", "10", "--backend", backend),
    )
    wait_until(lambda: "jobs done" in program.log(), "the jobs to be done")
    (url,) = re.findall(r"metrics at (http://\S+/metrics)", program.log())

    queue = "otel_example"
    samples = prometheus_samples(url)
    assert samples[("procrastinate_anyio_jobs_deferred_total", "", queue)] == 10
    assert samples[("procrastinate_anyio_jobs_started_total", "", queue)] == 10
    assert samples[("procrastinate_anyio_jobs_finished_total", "succeeded", queue)] == 8
    assert samples[("procrastinate_anyio_jobs_finished_total", "failed", queue)] == 2
    assert (
        samples[("procrastinate_anyio_job_queue_wait_seconds_count", "", queue)] == 10
    )
    durations = [
        value
        for (name, _, _), value in samples.items()
        if name == "procrastinate_anyio_job_duration_seconds_count"
    ]
    assert sorted(durations) == [2, 8]
    # Refreshed every second: the jobs were todo, then none is.
    wait_until(
        lambda: (
            prometheus_samples(url).get(
                ("procrastinate_anyio_queue_depth", "todo", queue)
            )
            == 0
        ),
        "an empty queue depth",
    )

    assert program.stop(signal.SIGINT) == 0, program.log()
    assert "'succeeded': 8" in program.log()
    assert job_statuses(pg_dsn) == {"succeeded": 8, "failed": 2}
    assert registered_workers(pg_dsn) == 0
