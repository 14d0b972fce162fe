"""Workers and defers through a real PgBouncer in transaction pooling mode,
on asyncio and trio.

The fixture starts Debian's ``pgbouncer`` on a free local port, in front of
the test server. Locally the tests skip when it is not installed; in CI
(``CI`` set) a missing PgBouncer fails them: ``.ci/run`` installs it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pathlib
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from typing import TYPE_CHECKING

import anyio
import psycopg
import pytest

import procrastinate_anyio as pa
from procrastinate_anyio.connectors.postgres import _async
from procrastinate_anyio.connectors.postgres._pooler import LISTEN_UNSUPPORTED
from tests.support import PG_HANG_GUARD_SECONDS

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.anyio

START_TIMEOUT_SECONDS = 10


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _pgbouncer_binary() -> str:
    found = shutil.which("pgbouncer") or (
        "/usr/sbin/pgbouncer" if os.path.exists("/usr/sbin/pgbouncer") else None
    )
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("pgbouncer is not installed; .ci/run installs it in CI")
        pytest.skip("pgbouncer is not installed (apt-get install pgbouncer)")
    return found


@pytest.fixture(scope="module")
def pgbouncer_port() -> Iterator[int]:
    """A PgBouncer in transaction mode in front of the test server; its port."""
    from tests.conftest import ADMIN_DSN

    binary = _pgbouncer_binary()
    upstream = psycopg.conninfo.conninfo_to_dict(ADMIN_DSN)
    port = _free_port()
    directory = pathlib.Path(tempfile.mkdtemp(prefix="pa-pgbouncer-"))
    directory.chmod(0o755)  # PgBouncer runs as another user when we are root
    users = directory / "users.txt"
    users.write_text(f'"{upstream.get("user", "postgres")}" ""\n')
    config = directory / "pgbouncer.ini"
    config.write_text(
        "[databases]\n"
        f"* = host={upstream.get('host', '127.0.0.1')} port={upstream.get('port', 5432)}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {users}\n"
        "pool_mode = transaction\nmax_client_conn = 200\ndefault_pool_size = 20\n"
    )
    for path in (users, config):
        path.chmod(0o644)
    command = [binary, str(config)]
    if os.geteuid() == 0:  # PgBouncer refuses to run as root
        command[1:1] = ["-u", _unprivileged_user()]
    log = directory / "pgbouncer.log"
    with log.open("w") as out:  # a file, not a pipe: a full pipe would block it
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_listening(port, process, log)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=START_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(directory, ignore_errors=True)


def _unprivileged_user() -> str:
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name).pw_name
    pytest.fail("no unprivileged user to run pgbouncer as")


def _wait_listening(
    port: int, process: subprocess.Popen[bytes], log: pathlib.Path
) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while True:
        if process.poll() is not None:
            pytest.fail(f"pgbouncer exited at start:\n{log.read_text()}")
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", port), timeout=1),
        ):
            return
        assert time.monotonic() < deadline, "pgbouncer did not start listening"
        time.sleep(0.05)


@pytest.fixture
def bouncer_dsn(pg_dsn: str, pgbouncer_port: int) -> str:
    """The fresh test database, through PgBouncer."""
    return psycopg.conninfo.make_conninfo(
        pg_dsn, host="127.0.0.1", port=str(pgbouncer_port)
    )


async def test_worker_and_defers_through_transaction_pooling(
    bouncer_dsn: str, caplog: pytest.LogCaptureFixture
) -> None:
    """With default connector settings, defers and a polling worker work
    through PgBouncer in transaction mode: prepared statements are turned
    off once the pooler is detected."""
    caplog.set_level(logging.INFO, logger="procrastinate_anyio")
    app = pa.App(
        connector=pa.PsycopgConnector(bouncer_dsn, max_size=4),
        worker_defaults={"install_signal_handlers": False, "listen_notify": False},
    )

    @app.task
    async def double(x: int) -> int:
        return 2 * x

    async with app.open_async():
        # One by one: psycopg would prepare a statement run this often.
        ids = [await double.defer_async(x=i) for i in range(20)]
        ids += await double.batch_defer_async(*({"x": i} for i in range(20, 300)))
        with anyio.fail_after(PG_HANG_GUARD_SECONDS):
            await app.run_worker(wait=False, concurrency=10)
        jobs = await app.job_manager.list_jobs_async()

    assert sorted(j.id for j in jobs) == sorted(ids)
    assert {j.status for j in jobs} == {pa.Status.SUCCEEDED}
    assert "pooler_detected" in {getattr(r, "action", None) for r in caplog.records}


def test_sync_defers_through_transaction_pooling(bouncer_dsn: str) -> None:
    """The sync connector defers many jobs one by one through PgBouncer."""
    app = pa.App(connector=pa.PsycopgConnector(bouncer_dsn))
    app.task(name="noop")(lambda: None)
    with app.open():
        ids = [app.configure_task("noop").defer() for _ in range(20)]
        assert len(app.job_manager.list_jobs()) == len(ids)


async def test_listen_through_transaction_pooling_fails_clearly(
    bouncer_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """LISTEN through transaction pooling fails with an error that says what
    to do, instead of listening to nothing."""
    monkeypatch.setattr(_async, "LISTEN_PROBE_TIMEOUT_SECONDS", 0.5)
    connector = pa.PsycopgConnector(bouncer_dsn, max_size=2)
    await connector.open_async()
    try:
        with anyio.fail_after(PG_HANG_GUARD_SECONDS):
            with pytest.raises(pa.ConnectorException) as caught:
                await connector.listen(lambda notification: None)
    finally:
        await connector.close_async()
    assert str(caught.value) == LISTEN_UNSUPPORTED


async def test_direct_connection_keeps_prepared_statements(
    pg_connector: pa.PsycopgConnector,
) -> None:
    """On a direct connection no pooler is detected and LISTEN works."""
    listening = anyio.Event()

    async def listen() -> None:
        await pg_connector.listen(lambda n: None, task_status=_Started(listening))

    await pg_connector.job_get(1)
    with anyio.fail_after(PG_HANG_GUARD_SECONDS):
        async with anyio.create_task_group() as tg:
            tg.start_soon(listen)
            await listening.wait()
            tg.cancel_scope.cancel()
    assert pg_connector._pooler.behind_pooler is False


class _Started:
    def __init__(self, event: anyio.Event) -> None:
        self._event = event

    def started(self, value: object = None) -> None:
        self._event.set()
