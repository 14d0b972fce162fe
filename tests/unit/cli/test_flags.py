"""Tests of the worker flags: derived from WorkerOptions, none forgotten."""

from __future__ import annotations

import inspect

import attrs

from procrastinate_anyio import App
from procrastinate_anyio.cli import _flags, _main
from procrastinate_anyio.worker._options import WorkerOptions


def test_every_worker_option_is_decided() -> None:
    """Each WorkerOptions field is a flag or listed as not a flag, never both."""
    fields = set(attrs.fields_dict(WorkerOptions))
    flags = {flag.option for flag in _flags.WORKER_FLAGS} - _flags.RUN_WORKER_FLAGS
    not_flags = set(_flags.NOT_CLI_FLAGS)

    assert flags | not_flags == fields
    assert flags.isdisjoint(not_flags)


def test_other_flags_are_run_worker_sync_keywords() -> None:
    """A flag that is not a WorkerOptions field is a keyword of run_worker_sync."""
    keywords = set(inspect.signature(App.run_worker_sync).parameters)

    assert keywords >= _flags.RUN_WORKER_FLAGS
    assert _flags.RUN_WORKER_FLAGS.isdisjoint(attrs.fields_dict(WorkerOptions))


def test_flag_names_and_variables_follow_the_option() -> None:
    """A flag is named after its option (unless renamed), and so is its variable."""
    names = {
        flag.option: (flag.flags[-1], flag.env_var) for flag in _flags.WORKER_FLAGS
    }

    assert names["fetch_job_polling_interval"] == (
        "--fetch-job-polling-interval",
        "PROCRASTINATE_ANYIO_WORKER_FETCH_JOB_POLLING_INTERVAL",
    )
    assert names["wait"] == ("--one-shot", "PROCRASTINATE_ANYIO_WORKER_ONE_SHOT")


def test_every_flag_value_is_a_valid_worker_option() -> None:
    """What each flag parses is accepted by WorkerOptions as it is."""
    argv = [
        "worker", "-q", "a,b", "-c", "2", "--prefetch", "0", "-n", "w", "--one-shot",
        "--shutdown-graceful-timeout", "1", "--no-listen-notify",
        "--delete-jobs", "always", "--fetch-job-polling-interval", "1",
        "--abort-job-polling-interval", "1",
    ]  # fmt: skip
    options = _flags.worker_options(_main.make_parser().parse_args(argv), {})
    options = {
        name: value
        for name, value in options.items()
        if name not in _flags.RUN_WORKER_FLAGS
    }

    assert set(options) == set(attrs.fields_dict(WorkerOptions)) - set(
        _flags.NOT_CLI_FLAGS
    )
    WorkerOptions(**options)
