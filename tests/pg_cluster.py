"""A private PostgreSQL cluster for the tests that restart the server: the
shared test server must never be restarted.

:func:`private_cluster` runs ``initdb`` into a temporary directory and starts
the server on a free local port, with its Unix socket in that directory, as
the ``postgres`` OS user when we are root (PostgreSQL refuses to run as
root). The cluster is small and unsafe on purpose (``fsync = off``, little
shared memory): it lives for one test session and is removed at the end,
even when a test fails.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pathlib
import pwd
import shutil
import socket
import subprocess
import tempfile
from typing import TYPE_CHECKING, Final

import attrs

if TYPE_CHECKING:
    from collections.abc import Iterator

START_TIMEOUT_SECONDS: Final = 30
"""Bound on ``pg_ctl start`` / ``restart`` / ``stop`` (``-w -t``)."""

SETTINGS: Final = {
    "listen_addresses": "'127.0.0.1'",
    "max_connections": "40",
    "shared_buffers": "16MB",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "log_min_messages": "warning",
}


class ClusterUnavailable(RuntimeError):
    """PostgreSQL's server binaries (``initdb``, ``pg_ctl``) are not installed."""


def server_bindir() -> pathlib.Path:
    """The directory of ``initdb`` and ``pg_ctl``: ``pg_config --bindir``, or
    the newest ``/usr/lib/postgresql/*/bin`` (Debian's layout).

    Raises:
        ClusterUnavailable: no directory has both.
    """
    candidates: list[pathlib.Path] = []
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        out = subprocess.run(
            ["pg_config", "--bindir"], capture_output=True, text=True, check=True
        )
        candidates.append(pathlib.Path(out.stdout.strip()))
    versions = glob.glob("/usr/lib/postgresql/*/bin")
    candidates += sorted(
        (pathlib.Path(path) for path in versions),
        key=lambda path: int(path.parent.name) if path.parent.name.isdigit() else 0,
        reverse=True,
    )
    for bindir in candidates:
        if (bindir / "initdb").exists() and (bindir / "pg_ctl").exists():
            return bindir
    raise ClusterUnavailable("initdb and pg_ctl not found (apt-get install postgresql)")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@attrs.frozen
class Cluster:
    """A running private cluster."""

    bindir: pathlib.Path
    directory: pathlib.Path
    port: int
    as_user: tuple[str, ...]
    """The command prefix that runs a command as the cluster's owner."""

    @property
    def data(self) -> pathlib.Path:
        return self.directory / "data"

    @property
    def log(self) -> pathlib.Path:
        return self.directory / "server.log"

    @property
    def dsn(self) -> str:
        """The admin DSN (database ``postgres``, user ``postgres``, trust)."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def pg_ctl(self, *args: str) -> None:
        """Run ``pg_ctl`` on the cluster, waiting for it to finish.

        Raises:
            RuntimeError: it failed; the message has the server's log.
        """
        command = [
            *self.as_user,
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-w",
            "-t",
            str(START_TIMEOUT_SECONDS),
            *args,
        ]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(
                f"pg_ctl {' '.join(args)} failed ({done.returncode}):\n"
                f"{done.stdout}{done.stderr}\n{log}"
            )

    def restart(self) -> None:
        """Restart the server (fast shutdown: sessions are terminated)."""
        self.pg_ctl("restart", "-m", "fast")


def _as_owner() -> tuple[tuple[str, ...], int | None, int | None]:
    """The command prefix and ids to run the server as (not root)."""
    if os.geteuid() != 0:
        return (), None, None
    entry = pwd.getpwnam("postgres")
    return ("runuser", "-u", entry.pw_name, "--"), entry.pw_uid, entry.pw_gid


@contextlib.contextmanager
def private_cluster() -> Iterator[Cluster]:
    """A new cluster, started; stopped and removed on exit.

    Raises:
        ClusterUnavailable: the server binaries are not installed.
        RuntimeError: the cluster could not be created or started.
    """
    bindir = server_bindir()
    as_user, uid, gid = _as_owner()
    directory = pathlib.Path(tempfile.mkdtemp(prefix="pa-private-pg-"))
    try:
        if uid is not None and gid is not None:
            os.chown(directory, uid, gid)
        cluster = Cluster(bindir, directory, _free_port(), as_user)
        initdb = subprocess.run(
            [
                *as_user,
                str(bindir / "initdb"),
                "-D",
                str(cluster.data),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--no-sync",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if initdb.returncode != 0:
            raise RuntimeError(f"initdb failed:\n{initdb.stdout}{initdb.stderr}")
        settings = {
            **SETTINGS,
            "port": str(cluster.port),
            "unix_socket_directories": f"'{directory}'",
        }
        with (cluster.data / "postgresql.conf").open("a") as conf:
            conf.writelines(f"{name} = {value}\n" for name, value in settings.items())
        cluster.pg_ctl("start")
        try:
            yield cluster
        finally:
            cluster.pg_ctl("stop", "-m", "immediate")
    finally:
        shutil.rmtree(directory, ignore_errors=True)
