"""The shell on the in-memory connector: filters, each command, and the
``shell`` CLI command run in-process, one-shot and interactive (its
subprocess twin against PostgreSQL is in ``tests/acceptance/``)."""

from __future__ import annotations

import io
import sys
from typing import TYPE_CHECKING

import pytest

from procrastinate_anyio import App, InMemoryConnector, Status
from procrastinate_anyio.cli import _main
from procrastinate_anyio.cli._shell import Shell, ShellError, parse_filters
from procrastinate_anyio.connectors import FetchParams, JobOutcome

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

shell_app = App(connector=InMemoryConnector())
"""The app the CLI loads: ``--app tests.unit.cli.test_shell.shell_app``."""


@shell_app.task(name="mail", queue="emails", lock="inbox")
def mail(to: str) -> None: ...


@shell_app.task(name="report", queueing_lock="daily")
def report() -> None: ...


@pytest.fixture
def jobs() -> Iterator[dict[str, int]]:
    """Jobs of ``shell_app``: todo, failed, succeeded, doing (another lock)."""
    store = shell_app.connector.store  # type: ignore[attr-defined]  # InMemoryConnector
    store.reset()
    with shell_app.open():
        ids = {
            "failed": mail.defer(to="a"),
            "succeeded": report.defer(),
            "doing": mail.configure(lock="other").defer(to="c"),
        }
        claimed = store.job_fetch_many(FetchParams(worker_id=1, queues=None, limit=3))
        assert len(claimed) == 3
        store.job_finish_many(
            [
                JobOutcome(job_id=ids["failed"], status=Status.FAILED, lock="inbox"),
                JobOutcome(job_id=ids["succeeded"], status=Status.SUCCEEDED),
            ]
        )
        ids["todo"] = mail.defer(to="d")
    yield ids
    store.reset()


@pytest.fixture
def run() -> Iterator[Callable[..., str]]:
    """Run shell commands; returns what they printed."""
    with shell_app.open():

        def run_commands(*lines: str) -> str:
            out = io.StringIO()
            shell = Shell(shell_app.job_manager, stdout=out)
            for line in lines:
                assert not shell.onecmd(line)  # the shell goes on
            return out.getvalue()

        yield run_commands


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        pytest.param("", {}, id="empty"),
        pytest.param(
            "status=failed queue=emails",
            {"status": "failed", "queue": "emails"},
            id="strings",
        ),
        pytest.param("id=3 limit=10", {"id": 3, "limit": 10}, id="integers"),
        pytest.param("lock='a b'", {"lock": "a b"}, id="quoted"),
    ],
)
def test_parse_filters(line: str, expected: dict[str, object]) -> None:
    """``key=value`` words become filters; numeric filters become integers."""
    assert parse_filters(line, ("id", "queue", "status", "lock", "limit")) == expected


@pytest.mark.parametrize(
    ("line", "message"),
    [
        pytest.param("status", "expected key=value", id="no-equals"),
        pytest.param("colour=red", "unknown filter 'colour'", id="unknown"),
        pytest.param("id=three", "id must be an integer", id="not-a-number"),
    ],
)
def test_parse_filters_errors(line: str, message: str) -> None:
    """Bad filters raise ShellError, saying what is wrong."""
    with pytest.raises(ShellError, match=message):
        parse_filters(line, ("id", "status"))


def test_list_jobs(jobs: dict[str, int], run) -> None:
    """list_jobs lists every job, or those matching the filters, with details on demand."""
    assert run("list_jobs").splitlines() == [
        f"#{jobs['failed']} mail on emails - [failed]",
        f"#{jobs['succeeded']} report on default - [succeeded]",
        f"#{jobs['doing']} mail on emails - [doing]",
        f"#{jobs['todo']} mail on emails - [todo]",
    ]
    assert run("list_jobs status=failed").splitlines() == [
        f"#{jobs['failed']} mail on emails - [failed]"
    ]
    assert run("list_jobs lock=inbox limit=1") == run("list_jobs status=failed")
    (line,) = run("list_jobs task=report details").splitlines()
    assert "attempts=1" in line
    assert "queueing_lock=daily" in line


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        pytest.param(
            "list_queues",
            [
                "default: 1 jobs (todo: 0, doing: 0, succeeded: 1, failed: 0, cancelled: 0, aborted: 0)",
                "emails: 3 jobs (todo: 1, doing: 1, succeeded: 0, failed: 1, cancelled: 0, aborted: 0)",
            ],
            id="queues",
        ),
        pytest.param(
            "list_tasks status=todo",
            [
                "mail: 1 jobs (todo: 1, doing: 0, succeeded: 0, failed: 0, cancelled: 0, aborted: 0)"
            ],
            id="tasks",
        ),
        pytest.param(
            "list_locks",
            [
                "inbox: 2 jobs (todo: 1, doing: 0, succeeded: 0, failed: 1, cancelled: 0, aborted: 0)",
                "other: 1 jobs (todo: 0, doing: 1, succeeded: 0, failed: 0, cancelled: 0, aborted: 0)",
            ],
            id="locks",
        ),
    ],
)
@pytest.mark.usefixtures("jobs")
def test_group_counts(run, command: str, expected: list[str]) -> None:
    """list_queues, list_tasks and list_locks count jobs per status."""
    assert run(command).splitlines() == expected


def test_retry(jobs: dict[str, int], run) -> None:
    """retry puts a failed job back to todo; a job that did not fail is refused."""
    failed, todo = jobs["failed"], jobs["todo"]

    assert run(f"retry {failed}") == f"#{failed} mail on emails - [todo]\n"
    assert run(f"retry {todo}") == (
        f"Error: No failed, aborted or cancelled job with id {todo}\n"
    )


@pytest.mark.usefixtures("jobs")
def test_retry_queueing_lock_taken(run) -> None:
    """retry of a job whose queueing lock is taken says so and changes nothing."""
    cancelled = report.defer()  # the app is open (``run``)
    assert shell_app.job_manager.cancel_job_by_id(cancelled)
    report.defer()

    assert run(f"retry {cancelled}") == (
        "Error: A job with this queueing lock is already waiting: 'daily'\n"
    )
    assert "[cancelled]" in run(f"list_jobs id={cancelled}")


def test_cancel_and_abort(jobs: dict[str, int], run) -> None:
    """cancel cancels a todo job only; abort also asks a doing job to stop."""
    todo, doing, failed = jobs["todo"], jobs["doing"], jobs["failed"]

    assert run(f"cancel {doing}") == (
        f"#{doing}: not cancelled (not found, running or finished)\n"
    )
    assert run(f"cancel {todo}") == f"#{todo}: cancelled\n"
    assert run(f"abort {doing}") == f"#{doing}: abort requested\n"
    assert run(f"abort {failed}") == f"#{failed}: not aborted (not found or finished)\n"
    assert shell_app.job_manager.get_job(doing).abort_requested  # type: ignore[union-attr]  # it exists


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        pytest.param("retry", "Error: expected one job id, got ''", id="no-id"),
        pytest.param(
            "cancel 1 2", "Error: expected one job id, got '1 2'", id="two-ids"
        ),
        pytest.param(
            "list_jobs status=lost",
            "Error: 'lost' is not a valid Status",
            id="bad-status",
        ),
        pytest.param(
            "list_jobs colour=red", "Error: unknown filter 'colour'", id="bad-filter"
        ),
        pytest.param(
            "drop_table", "Unknown command: 'drop_table'; type help", id="unknown"
        ),
        pytest.param("", "", id="empty-line"),
    ],
)
@pytest.mark.usefixtures("jobs")
def test_errors_do_not_stop_the_shell(run, line: str, expected: str) -> None:
    """A bad command prints one line and the shell goes on."""
    assert run(line).startswith(expected)


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    """Run ``procrastinate-anyio --app ... shell ...`` in-process; returns stdout."""
    monkeypatch.setattr(_main, "configure_logging", lambda *args, **kwargs: None)

    def run_cli(*args: str, stdin: str = "", code: int = 0) -> str:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        with pytest.raises(SystemExit) as exit_info:
            _main.main(["--app", "tests.unit.cli.test_shell.shell_app", "shell", *args])
        assert exit_info.value.code == code
        return capsys.readouterr().out

    return run_cli


def test_cli_one_shot(jobs: dict[str, int], cli) -> None:
    """``shell list_jobs status=failed`` runs that one command and exits."""
    assert cli("list_jobs", "status=failed") == (
        f"#{jobs['failed']} mail on emails - [failed]\n"
    )


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(("retry", "not-a-number"), id="bad-argument"),
        pytest.param(("frobnicate",), id="unknown-command"),
    ],
)
@pytest.mark.usefixtures("jobs")
def test_cli_one_shot_failure_exits_1(cli, args: tuple[str, ...]) -> None:
    """A one-shot command that fails prints why and exits 1."""
    out = cli(*args, code=1)

    assert out.startswith(("Error:", "Unknown command"))


def test_cli_interactive(jobs: dict[str, int], cli) -> None:
    """Without a command, the shell reads commands from stdin until EOF."""
    failed = jobs["failed"]

    out = cli(stdin=f"retry {failed}\nlist_jobs status=todo\n")

    assert out.startswith("Welcome to the procrastinate_anyio shell.")
    assert f"#{failed} mail on emails - [todo]" in out
    assert out.count("[todo]") == 3  # the retry's line, then two listed jobs
    assert out.endswith(Shell.prompt)
