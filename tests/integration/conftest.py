"""The private PostgreSQL cluster of the tests that restart the server (see
:mod:`tests.pg_cluster`): one for the whole session, started when a test
first needs it.

Locally the tests skip when PostgreSQL's server binaries are missing; in CI
(``CI`` set) they fail instead, and so does a cluster that cannot start.
"""

from __future__ import annotations

import itertools
import os
from typing import TYPE_CHECKING

import psycopg
import pytest
from psycopg import sql

from procrastinate_anyio._schema import SchemaManager, read_migrations
from procrastinate_anyio.connectors.postgres._sync import SyncPsycopgConnector
from tests.pg_cluster import Cluster, ClusterUnavailable, private_cluster, server_bindir

if TYPE_CHECKING:
    from collections.abc import Iterator

_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def private_pg() -> Iterator[Cluster]:
    """A private cluster, which tests may restart."""
    try:
        server_bindir()
    except ClusterUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(f"{exc}: CI must run the restart tests")
        pytest.skip(str(exc))
    with private_cluster() as cluster:
        yield cluster


@pytest.fixture
def private_dsn(private_pg: Cluster) -> Iterator[str]:
    """DSN of a fresh database with the schema, on the private cluster."""
    name = f"pa_private_{next(_numbers)}"
    with psycopg.connect(private_pg.dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    dsn = psycopg.conninfo.make_conninfo(private_pg.dsn, dbname=name)
    connector = SyncPsycopgConnector(dsn, min_size=0, max_size=1)
    connector.open()
    try:
        connector.schema_apply(SchemaManager.get_schema(), read_migrations())
    finally:
        connector.close()
    try:
        yield dsn
    finally:
        with psycopg.connect(private_pg.dsn, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(name)
                )
            )
