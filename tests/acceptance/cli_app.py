"""The app that ``test_cli.py`` loads in a subprocess: ``--app tests.acceptance.cli_app.app``.

Its database comes from ``PA_CLI_TEST_DSN``.
"""

from __future__ import annotations

import os

import procrastinate_anyio as pa

app = pa.App(connector=pa.PsycopgConnector(os.environ.get("PA_CLI_TEST_DSN", "")))

not_an_app = "a string, for the error of an --app that is not an App"


@app.task(name="sum", aliases=["add"])
async def sum_(a: int, b: int) -> int:
    return a + b


@app.task(name="report", queue="reports", queueing_lock="daily-report")
def report() -> None:
    pass
