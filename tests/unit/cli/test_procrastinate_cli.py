"""Procrastinate's CLI flags and environment variables, accepted by
``procrastinate-anyio`` as fallbacks."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from procrastinate_anyio.cli import _commands, _flags, _main
from procrastinate_anyio.cli._errors import CLIError


def worker_options(argv: list[str], environ: dict[str, str] | None = None) -> Any:
    args = _main.make_parser().parse_args(["worker", *argv])
    return _flags.worker_options(args, environ or {})


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        pytest.param(["-w"], {"wait": True}, id="w"),
        pytest.param(["--wait"], {"wait": True}, id="wait"),
        pytest.param(["--one-shot"], {"wait": False}, id="one-shot"),
        pytest.param(["-l"], {"listen_notify": True}, id="l"),
        pytest.param(["--no-listen-notify"], {"listen_notify": False}, id="no-listen"),
        pytest.param(["-p", "2"], {"fetch_job_polling_interval": 2.0}, id="p"),
        pytest.param(["-a", "3"], {"abort_job_polling_interval": 3.0}, id="a"),
    ],
)
def test_procrastinate_worker_flags(argv: list[str], expected: dict[str, Any]) -> None:
    """Procrastinate's worker flags set the same options."""
    assert worker_options(argv) == expected


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        pytest.param({"PROCRASTINATE_WORKER_WAIT": "0"}, {"wait": False}, id="wait"),
        pytest.param(
            {"PROCRASTINATE_WORKER_LISTEN_NOTIFY": "false"},
            {"listen_notify": False},
            id="listen",
        ),
        pytest.param(
            {"PROCRASTINATE_WORKER_QUEUES": "a,b"}, {"queues": ["a", "b"]}, id="queues"
        ),
        pytest.param(
            {
                "PROCRASTINATE_WORKER_CONCURRENCY": "3",
                "PROCRASTINATE_ANYIO_WORKER_CONCURRENCY": "5",
            },
            {"concurrency": 5},
            id="ours-wins",
        ),
    ],
)
def test_procrastinate_worker_variables(
    environ: dict[str, str], expected: dict[str, Any]
) -> None:
    """``PROCRASTINATE_WORKER_<OPTION>`` is read when ours is not set; a
    switch's value is the option's."""
    assert worker_options([], environ) == expected


def test_procrastinate_worker_variable_error() -> None:
    """A bad value in Procrastinate's variable is an error naming it."""
    with pytest.raises(CLIError, match="PROCRASTINATE_WORKER_CONCURRENCY"):
        worker_options([], {"PROCRASTINATE_WORKER_CONCURRENCY": "many"})


def test_version_short_flag(capsys: pytest.CaptureFixture[str]) -> None:
    """``-V`` prints the version, as in Procrastinate."""
    with pytest.raises(SystemExit) as exit_info:
        _main.make_parser().parse_args(["-V"])

    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith("procrastinate-anyio ")


def settings(argv: list[str]) -> dict[str, Any]:
    return _main._logging_settings(_main.make_parser().parse_args(argv))


def test_logging_flags() -> None:
    """``--log-level``, ``--log-format`` and ``--log-format-style``."""
    argv = ["--log-level", "debug", "--log-format", "{message}"]
    found = settings([*argv, "--log-format-style", "{", "schema"])

    assert (found["level"], found["fmt"], found["style"]) == (
        logging.DEBUG,
        "{message}",
        "{",
    )


def test_logging_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """Procrastinate's logging variables apply when no flag is given."""
    monkeypatch.setenv("PROCRASTINATE_VERBOSE", "2")
    monkeypatch.setenv("PROCRASTINATE_LOG_LEVEL", "error")
    monkeypatch.setenv("PROCRASTINATE_LOG_FORMAT", "$message")
    monkeypatch.setenv("PROCRASTINATE_LOG_FORMAT_STYLE", "$")

    found = settings(["schema"])

    assert (found["verbosity"], found["level"], found["fmt"], found["style"]) == (
        2,
        logging.ERROR,
        "$message",
        "$",
    )


def test_bad_log_level_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bad ``PROCRASTINATE_LOG_LEVEL`` is a clear error."""
    monkeypatch.setenv("PROCRASTINATE_LOG_LEVEL", "loud")

    with pytest.raises(CLIError, match="PROCRASTINATE_LOG_LEVEL"):
        settings(["schema"])


def test_worker_logs_at_info_by_default() -> None:
    """The worker logs at INFO by default; the other commands at WARNING."""
    assert settings(["worker"])["default_level"] == logging.INFO
    assert settings(["schema"])["default_level"] == logging.WARNING


def test_defer_flags_and_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """``-i`` and the ``--no-`` twins; ``PROCRASTINATE_DEFER_*`` defaults."""
    monkeypatch.setenv("PROCRASTINATE_DEFER_QUEUE", "mail")
    monkeypatch.setenv("PROCRASTINATE_DEFER_PRIORITY", "4")
    monkeypatch.setenv("PROCRASTINATE_DEFER_UNKNOWN", "yes")
    parser = _main.make_parser()

    args = parser.parse_args(["defer", "t", "-i"])
    assert (args.queue, args.priority, args.unknown, args.ignore_already_enqueued) == (
        "mail",
        4,
        True,
        True,
    )
    args = parser.parse_args(["defer", "t", "--no-unknown", "--queue", "sms"])
    assert (args.queue, args.unknown, args.ignore_already_enqueued) == (
        "sms",
        False,
        False,
    )


def test_procrastinate_app_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """``PROCRASTINATE_APP`` names the app when ours is not set."""
    monkeypatch.delenv(_commands.APP_ENV_VAR, raising=False)
    monkeypatch.setenv("PROCRASTINATE_APP", "tests.acceptance.cli_app.app")
    args = _main.make_parser().parse_args(["healthchecks"])

    app = _commands._load_app(args)

    assert type(app).__name__ == "App"
