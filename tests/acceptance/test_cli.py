"""The ``procrastinate-anyio`` CLI, run for real in a subprocess.

The app under test is ``tests/acceptance/cli_app.py``; its database comes from
``PA_CLI_TEST_DSN``. Worker options are parsed in-process: running a worker
belongs to the worker's own acceptance tests.
"""

from __future__ import annotations

import datetime
import os
import pathlib
import re
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

import procrastinate_anyio as pa
from procrastinate_anyio._schema import migration_names
from procrastinate_anyio.cli import _commands, _errors, _flags, _main

if TYPE_CHECKING:
    from collections.abc import Mapping

    from tests.conftest import DatabaseFactory

ROOT = pathlib.Path(__file__).resolve().parents[2]
APP_PATH = "tests.acceptance.cli_app.app"
UNREACHABLE_DSN = "postgresql://postgres@127.0.0.1:1/nowhere"
DEFERRED = re.compile(r"^Deferred (?P<task>\S+)\[(?P<id>\d+)\]\((?P<call>.*)\)$")


def run_cli(
    *args: str,
    dsn: str = UNREACHABLE_DSN,
    app: str | None = APP_PATH,
    env: Mapping[str, str] | None = None,
    command: tuple[str, ...] = (sys.executable, "-m", "procrastinate_anyio"),
) -> subprocess.CompletedProcess[str]:
    """Run the CLI with ``cli_app`` on ``dsn`` (by default an unreachable one,
    which proves that a command failed before any I/O)."""
    environ = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("PROCRASTINATE_ANYIO_")
    }
    environ["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])
    )
    environ["PA_CLI_TEST_DSN"] = dsn
    if app is not None:
        environ[_commands.APP_ENV_VAR] = app
    environ.update(env or {})
    return subprocess.run(
        [*command, *args],
        capture_output=True,
        text=True,
        env=environ,
        cwd=ROOT,
        timeout=30,
        check=False,
    )


def deferred_id(result: subprocess.CompletedProcess[str]) -> int:
    assert result.returncode == 0, result.stderr
    match = DEFERRED.match(result.stdout.strip())
    assert match is not None, result.stdout
    return int(match["id"])


def assert_user_error(result: subprocess.CompletedProcess[str], fragment: str) -> None:
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr
    # The worker logs at INFO by default (its start line); nothing else does.
    lines = [line for line in result.stderr.splitlines() if " INFO " not in line]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    assert fragment in lines[0]
    assert result.stdout == ""


def list_jobs(dsn: str) -> list[pa.Job]:
    app = pa.App(connector=pa.PsycopgConnector(dsn))
    with app.open():
        return app.job_manager.list_jobs()


# ---------------------------------------------------------------- general


def test_version() -> None:
    """--version prints the library's version and its dependencies'."""
    result = run_cli("--version", app=None)

    assert result.returncode == 0
    assert result.stdout.startswith(f"procrastinate-anyio {pa.__version__} (Python ")
    assert "psycopg 3." in result.stdout
    assert "anyio 4." in result.stdout


def test_console_script() -> None:
    """The installed procrastinate-anyio script runs the same CLI."""
    script = pathlib.Path(sys.executable).with_name("procrastinate-anyio")
    if not script.exists():
        pytest.skip("the console script is not installed next to the interpreter")

    result = run_cli("--version", command=(str(script),))

    assert result.returncode == 0
    assert result.stdout.startswith("procrastinate-anyio ")


def test_verbose_logs_show_the_action() -> None:
    """-v logs to stderr at INFO, with the record's action readable."""
    result = run_cli("-v", "schema", "--migrations-path")

    assert result.returncode == 0
    assert result.stderr == ""  # --migrations-path logs nothing at INFO

    result = run_cli("-vv", "defer", "nope")

    assert result.returncode == 1
    assert "[action=load_app path='tests.acceptance.cli_app.app']" in result.stderr
    assert "Traceback" in result.stderr  # -vv shows handled errors' tracebacks
    assert result.stderr.splitlines()[-1].startswith("Error: No task named 'nope'")


# ---------------------------------------------------------------- defer


def test_defer(pg_dsn: str) -> None:
    """defer writes a job with the task's options and prints its id."""
    result = run_cli(
        "--app",
        "tests.acceptance.cli_app:app",
        "defer",
        "add",
        '{"a": 1, "b": 2}',
        dsn=pg_dsn,
    )

    job_id = deferred_id(result)
    assert result.stdout == f"Deferred sum[{job_id}](a=1, b=2)\n"
    (job,) = list_jobs(pg_dsn)
    assert (job.id, job.task_name, job.queue) == (job_id, "sum", "default")
    assert job.task_kwargs == {"a": 1, "b": 2}
    assert (job.priority, job.lock, job.queueing_lock, job.scheduled_at) == (
        0,
        None,
        None,
        None,
    )


def test_defer_with_every_option(pg_dsn: str) -> None:
    """--queue, --lock, --queueing-lock, --priority and --at reach the job."""
    result = run_cli(
        "-v",
        "defer",
        "sum",
        '{"a": 1, "b": 2}',
        "--queue=urgent",
        "--lock=account-1",
        "--queueing-lock=sum-1",
        "--priority=-5",
        "--at=2030-01-31T12:00:00Z",
        dsn=pg_dsn,
    )

    job_id = deferred_id(result)
    assert f"[action=defer_job job_id={job_id} task_name='sum']" in result.stderr
    (job,) = list_jobs(pg_dsn)
    assert (job.queue, job.lock, job.queueing_lock, job.priority) == (
        "urgent",
        "account-1",
        "sum-1",
        -5,
    )
    assert job.scheduled_at == datetime.datetime(
        2030, 1, 31, 12, tzinfo=datetime.timezone.utc
    )


def test_defer_in_seconds(pg_dsn: str) -> None:
    """--in schedules the job that many seconds from now."""
    before = datetime.datetime.now(datetime.timezone.utc)
    result = run_cli("defer", "sum", '{"a": 1, "b": 2}', "--in", "90.5", dsn=pg_dsn)
    after = datetime.datetime.now(datetime.timezone.utc)

    deferred_id(result)
    (job,) = list_jobs(pg_dsn)
    delay = datetime.timedelta(seconds=90.5)
    assert job.scheduled_at is not None
    assert before + delay <= job.scheduled_at <= after + delay


def test_defer_unknown_task(pg_dsn: str) -> None:
    """--unknown defers a task the app does not know, with unchecked arguments."""
    result = run_cli(
        "defer",
        "elsewhere.task",
        '{"x": [1, null]}',
        "--unknown",
        "--queue",
        "other",
        dsn=pg_dsn,
    )

    job_id = deferred_id(result)
    (job,) = list_jobs(pg_dsn)
    assert (job.id, job.task_name, job.queue) == (job_id, "elsewhere.task", "other")
    assert job.task_kwargs == {"x": [1, None]}


def test_already_enqueued(pg_dsn: str) -> None:
    """A taken queueing lock is an error, or a notice and exit 0 when ignored."""
    app = pa.App(connector=pa.PsycopgConnector(pg_dsn))
    with app.open():
        first = app.configure_task("report", queueing_lock="daily-report").defer()

    assert_user_error(run_cli("defer", "report", dsn=pg_dsn), "already waiting")
    result = run_cli("defer", "report", "--ignore-already-enqueued", dsn=pg_dsn)

    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        "Not deferred: a job with queueing lock 'daily-report' is already waiting\n"
    )
    assert [job.id for job in list_jobs(pg_dsn)] == [first]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        pytest.param(["defer", "sum", "{'a': 1}"], "JSON_ARGS is not valid JSON", id="bad-json"),
        pytest.param(["defer", "sum", "[1, 2]"], "must be a JSON object", id="json-not-object"),
        pytest.param(["defer", "nope"], "No task named 'nope'", id="unknown-task"),
        pytest.param(["defer", "sum", "--at", "2030-01-31T12:00"], "--at needs a timezone", id="naive-at"),
        pytest.param(["defer", "sum", "--at", "tomorrow"], "ISO 8601", id="bad-at"),
        pytest.param(["defer", "sum", "--priority", "9999999999"], "priority must fit", id="priority"),
        pytest.param(["defer", "sum", "--queue", ""], "queue must be 1 to 255", id="empty-queue"),
        pytest.param(["--app", "nope.app", "defer", "sum"], "Could not import 'nope'", id="app-import"),
        pytest.param(["--app", "tests.acceptance.cli_app.not_an_app", "defer", "sum"], "not an App", id="not-an-app"),
        pytest.param(["defer", "sum", '{"a": 1, "b": 2}'], "Could not connect to PostgreSQL", id="unreachable"),
        pytest.param(["schema", "--apply"], "Could not connect to PostgreSQL", id="unreachable-schema"),
        pytest.param(["worker", "--one-shot"], "Could not connect to PostgreSQL", id="unreachable-worker"),
    ],
)  # fmt: skip
def test_user_error(args: list[str], fragment: str) -> None:
    """An error the operator can fix is one line on stderr and exit code 1,
    found before any I/O (the database is unreachable) when it can be."""
    assert_user_error(run_cli(*args), fragment)


def test_missing_app() -> None:
    """Without --app or PROCRASTINATE_ANYIO_APP, the error says how to give one."""
    assert_user_error(run_cli("defer", "sum", app=None), "--app")


def test_invalid_job_arguments(pg_dsn: str) -> None:
    """Arguments that do not fit the task's signature are an error; no job is written."""
    assert_user_error(run_cli("defer", "sum", '{"a": 1}', dsn=pg_dsn), "'b'")
    assert list_jobs(pg_dsn) == []


def test_usage_error() -> None:
    """argparse's own usage errors exit 2, without a traceback."""
    result = run_cli("defer", "sum", "--at", "2030-01-31T12:00:00Z", "--in", "1")

    assert result.returncode == 2
    assert "not allowed with argument" in result.stderr
    assert "Traceback" not in result.stderr


# ---------------------------------------------------------------- schema, healthchecks


def test_schema_read() -> None:
    """schema --read prints schema.sql, without an app."""
    result = run_cli("schema", "--read", app=None)

    assert result.returncode == 0
    assert result.stdout == pa.SchemaManager.get_schema().rstrip("\n") + "\n"


def test_schema_migrations_path() -> None:
    """schema --migrations-path prints the folder of the migration files."""
    result = run_cli("schema", "--migrations-path", app=None)

    assert result.returncode == 0
    path = pathlib.Path(result.stdout.strip())
    assert path == pa.SchemaManager.get_migrations_path()
    assert any(path.glob("*.sql"))


def test_schema_apply_and_healthchecks(new_database: DatabaseFactory) -> None:
    """healthchecks fails on an empty database and passes once schema (--apply
    by default) ran; applying again is a no-op."""
    dsn = new_database()

    result = run_cli("healthchecks", dsn=dsn)
    assert result.returncode == 1
    app_line, *lines = result.stdout.splitlines()
    assert app_line.startswith("app: OK - ")
    assert lines == [
        "database: OK - connected",
        "schema: FAILED - no schema: run `procrastinate-anyio schema --apply`",
    ]

    result = run_cli("schema", dsn=dsn)
    assert result.returncode == 0, result.stderr
    names = migration_names()
    assert result.stdout == f"Applied {len(names)} migration(s): {', '.join(names)}\n"

    result = run_cli("schema", "--apply", dsn=dsn)
    assert (result.returncode, result.stdout) == (
        0,
        "The schema is up to date: nothing to apply\n",
    )

    result = run_cli("healthchecks", dsn=dsn)
    assert result.returncode == 0, result.stdout
    assert result.stdout.splitlines()[-1].startswith("schema: OK - up to date")


def test_healthchecks_unreachable_database() -> None:
    """healthchecks reports an unreachable database as a failed check, exit 1."""
    result = run_cli("healthchecks")

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    app_line, database_line = result.stdout.splitlines()
    assert app_line.startswith("app: OK - ")
    assert database_line.startswith("database: FAILED - Could not connect")


def test_healthchecks_bad_app() -> None:
    """healthchecks reports an app that does not load as a failed check, exit 1."""
    result = run_cli("--app", "nope.app", "healthchecks")

    assert result.returncode == 1
    assert (
        result.stdout
        == "app: FAILED - Could not import 'nope': No module named 'nope'\n"
    )


# ---------------------------------------------------------------- worker


def test_worker_help() -> None:
    """worker --help lists every flag with its environment variable."""
    result = run_cli("worker", "--help")

    assert result.returncode == 0
    help_text = " ".join(result.stdout.split())
    for flag in (
        "--queues",
        "--concurrency",
        "--backend {asyncio,trio}",
        "--name",
        "--one-shot",
        "--shutdown-graceful-timeout",
        "--no-listen-notify",
        "--delete-jobs {never,successful,always}",
        "--fetch-job-polling-interval",
        "--abort-job-polling-interval",
    ):
        assert flag in help_text
    assert "PROCRASTINATE_ANYIO_WORKER_ONE_SHOT" in help_text


def test_worker_rejects_a_bad_value() -> None:
    """A bad worker flag value is a usage error, before the app is loaded."""
    result = run_cli("worker", "--concurrency", "0", app="nope.app")

    assert result.returncode == 2
    assert (
        "argument -c/--concurrency: expected a positive integer, not '0'"
        in result.stderr
    )
    assert "Traceback" not in result.stderr


def test_worker_invalid_option() -> None:
    """A worker option the worker would refuse is one line and exit 1, before any I/O."""
    assert_user_error(run_cli("worker", "--name", "x" * 300), "worker name must be")


def parse_worker(
    *argv: str, environ: Mapping[str, str] | None = None
) -> dict[str, object]:
    args = _main.make_parser().parse_args(["worker", *argv])
    return _flags.worker_options(args, environ or {})


class TestWorkerOptions:
    def test_nothing_set(self) -> None:
        """Without flags or variables, no option is passed (worker_defaults apply)."""
        assert parse_worker() == {}

    def test_every_flag(self) -> None:
        """Each flag maps to its run_worker_sync keyword."""
        options = parse_worker(
            "-q", "a, b,", "-c", "20", "--backend", "trio", "-n", "w1", "--one-shot",
            "--shutdown-graceful-timeout", "1.5", "--no-listen-notify",
            "--delete-jobs", "successful", "--fetch-job-polling-interval", "0.5",
            "--abort-job-polling-interval", "2",
        )  # fmt: skip

        assert options == {
            "queues": ["a", "b"],
            "concurrency": 20,
            "backend": "trio",
            "name": "w1",
            "wait": False,
            "shutdown_graceful_timeout": 1.5,
            "listen_notify": False,
            "delete_jobs": "successful",
            "fetch_job_polling_interval": 0.5,
            "abort_job_polling_interval": 2.0,
        }

    def test_environment(self) -> None:
        """PROCRASTINATE_ANYIO_WORKER_<FLAG> sets an option; empty means unset."""
        environ = {
            "PROCRASTINATE_ANYIO_WORKER_CONCURRENCY": "20",
            "PROCRASTINATE_ANYIO_WORKER_QUEUES": "emails,reports",
            "PROCRASTINATE_ANYIO_WORKER_ONE_SHOT": "1",
            "PROCRASTINATE_ANYIO_WORKER_NO_LISTEN_NOTIFY": "false",
            "PROCRASTINATE_ANYIO_WORKER_DELETE_JOBS": "always",
            "PROCRASTINATE_ANYIO_WORKER_NAME": "",
        }

        assert parse_worker(environ=environ) == {
            "concurrency": 20,
            "queues": ["emails", "reports"],
            "wait": False,
            "listen_notify": True,
            "delete_jobs": "always",
        }

    def test_command_line_wins(self) -> None:
        """A flag on the command line overrides its environment variable."""
        environ = {"PROCRASTINATE_ANYIO_WORKER_CONCURRENCY": "20"}

        assert parse_worker("-c", "3", environ=environ) == {"concurrency": 3}

    @pytest.mark.parametrize(
        ("variable", "value"),
        [
            pytest.param("CONCURRENCY", "many", id="concurrency"),
            pytest.param("ONE_SHOT", "maybe", id="switch"),
            pytest.param("BACKEND", "curio", id="backend"),
            pytest.param("FETCH_JOB_POLLING_INTERVAL", "-1", id="interval"),
        ],
    )
    def test_bad_environment_value(self, variable: str, value: str) -> None:
        """A bad value in a variable is a CLIError that names the variable."""
        name = f"PROCRASTINATE_ANYIO_WORKER_{variable}"

        with pytest.raises(_errors.CLIError, match=f"^{name}: expected "):
            parse_worker(environ={name: value})
