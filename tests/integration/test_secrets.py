"""No password of a connection string appears in an exception message, a
traceback or a log line: a connection string that does not parse, a host
that does not resolve or refuses, a connection lost mid-run.

The test server trusts every connection, so a password in the DSN is
accepted and ignored: that lets a worker run with one, and lose its
connections, with the password there to leak.
"""

from __future__ import annotations

import contextlib
import logging
import traceback

import anyio
import pytest

import procrastinate_anyio as pa
from procrastinate_anyio.connectors.postgres import _sync, connect
from procrastinate_anyio.connectors.postgres._redact import secrets_of
from tests.support import PG_HANG_GUARD_SECONDS

pytestmark = pytest.mark.anyio

SECRET = "Sup3r-s3cret"

BAD_DSNS = [
    pytest.param(f"postgresql://u:{SECRET}@127.0.0.1:1/db", id="refused"),
    pytest.param(f"postgresql://u:{SECRET}@nohost.invalid/db", id="unresolved"),
    pytest.param(f"host=127.0.0.1 port=1 password={SECRET}", id="keyword-refused"),
    pytest.param(f"host=127.0.0.1 password=Sup3r {SECRET}", id="keyword-malformed"),
    pytest.param(f"postgresql://u:Sup3r@{SECRET}@127.0.0.1:1/db", id="at-in-password"),
    pytest.param(f"postgresql://u:{SECRET}@127.0.0.1:x/db", id="bad-port"),
    pytest.param(f"postgresql:///db?password={SECRET}&port=1", id="query-password"),
]


def leaked_pieces(text: str) -> list[str]:
    """The parts of SECRET (and of its malformed forms) found in ``text``."""
    return [piece for piece in (SECRET, "Sup3r", "s3cret") if piece in text]


def full_text(exc: BaseException) -> str:
    """What a log line with ``exc_info`` would show: the chained traceback."""
    return "".join(traceback.format_exception(exc))


@pytest.mark.parametrize("dsn", BAD_DSNS)
async def test_async_connector_errors_hide_the_password(dsn: str) -> None:
    """Opening the async connector, or its LISTEN connection, fails with a
    message and a traceback that hold no piece of the password."""
    connector = pa.PsycopgConnector(dsn, connect_kwargs={"connect_timeout": 5})
    with pytest.raises(pa.ConnectorException) as opening:
        await connector.open_async()
    with pytest.raises(pa.ConnectorException) as listening:
        await connector.connect_listener()

    for caught in (opening, listening):
        assert "Could not connect to PostgreSQL" in str(caught.value)
        assert leaked_pieces(full_text(caught.value)) == []


@pytest.mark.parametrize("dsn", BAD_DSNS)
def test_sync_connector_errors_hide_the_password(
    dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sync connector's errors hold no piece of the password either."""
    monkeypatch.setattr(_sync, "OPEN_TIMEOUT_SECONDS", 0.5)  # it fails anyway
    connector = pa.SyncPsycopgConnector(dsn, connect_kwargs={"connect_timeout": 5})
    with pytest.raises(pa.ConnectorException) as caught:
        connector.open()

    assert leaked_pieces(full_text(caught.value)) == []


def test_password_of_connect_kwargs_is_a_secret() -> None:
    """A password given in connect_kwargs, or in any form of the string, is
    masked; one-character pieces are not (they would mask letters)."""
    secrets = secrets_of("host=db password='a b'", {"password": SECRET})

    assert set(secrets) == {SECRET, "'a b'", "a b"}


@pytest.fixture
def secret_dsn(pg_dsn: str) -> str:
    """The test database's DSN with a password the trusting server ignores."""
    return f"{pg_dsn} password={SECRET}"


@pytest.fixture
def all_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="procrastinate_anyio")
    return caplog


async def test_connections_lost_mid_run_log_no_password(
    secret_dsn: str, pg_dsn: str, all_logs: pytest.LogCaptureFixture
) -> None:
    """A worker whose every connection is terminated goes on; nothing it
    logs, tracebacks included, holds the password."""
    connector = pa.PsycopgConnector(secret_dsn, max_size=2)
    app = pa.App(
        connector=connector,
        worker_defaults={
            "install_signal_handlers": False,
            "shutdown_graceful_timeout": 2,
        },
    )
    started, release = anyio.Event(), anyio.Event()

    @app.task
    async def hold() -> str:
        started.set()
        await release.wait()
        return "done"

    async with app.open_async():
        job_id = await hold.defer_async()
        with anyio.fail_after(PG_HANG_GUARD_SECONDS):
            async with anyio.create_task_group() as tg:
                worker = await tg.start(app.run_worker)
                await started.wait()
                await terminate_backends(pg_dsn)
                release.set()
                job = await wait_finished(app, job_id)
                worker.stop()
    assert job.status is pa.Status.SUCCEEDED

    shown = "\n".join(
        r.getMessage()
        + (full_text(r.exc_info[1]) if r.exc_info and r.exc_info[1] else "")
        for r in all_logs.records
    )
    assert "Lost" in shown or "terminat" in shown  # the loss was logged
    assert leaked_pieces(shown) == []


async def wait_finished(app: pa.App, job_id: int) -> pa.Job:
    """Poll the job until it is finished. Not ``wait_for_job_async``: a
    pooled connection terminated a moment ago may still look alive, and its
    first query fails (a transient error the caller retries)."""
    while True:
        with contextlib.suppress(pa.ConnectorException):
            job = await app.job_manager.get_job_async(job_id)
            if job is not None and job.status.is_final:
                return job
        await anyio.sleep(0.01)  # bounded by the caller's hang guard


async def terminate_backends(dsn: str) -> None:
    """Terminate every other connection to the test database, and wait until
    they are gone (then their FATAL message is in each client's socket, and
    the pool sees that an idle connection is dead)."""
    async with await connect(dsn) as conn:
        rows = await (
            await conn.execute(
                "SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ).fetchall()
        pids = [row["pid"] for row in rows]
        while True:
            cursor = await conn.execute(
                "SELECT 1 FROM pg_stat_activity WHERE pid = ANY(%s)", (pids,)
            )
            if not await cursor.fetchall():
                return
            await anyio.sleep(0.01)  # bounded by the caller's hang guard
