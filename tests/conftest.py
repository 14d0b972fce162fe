"""Fixtures shared by every test folder.

Every async test runs on asyncio and on trio: the ``anyio_backend`` fixture is
parametrised explicitly (not through anyio's default, which only lists the
backends that happen to be installed), so a missing trio fails loudly instead
of silently running half of the suite.

PostgreSQL: the schema is built once into a template database; each test that
needs the database gets a fresh copy (``CREATE DATABASE ... TEMPLATE``) that is
dropped afterwards. Tests never touch any other database.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator

import psycopg
import pytest
from psycopg import sql

from procrastinate_anyio import PsycopgConnector
from procrastinate_anyio._schema import SchemaManager, read_migrations
from procrastinate_anyio.connectors.postgres._sync import SyncPsycopgConnector

BACKENDS = [
    pytest.param("asyncio", id="asyncio"),
    pytest.param("trio", id="trio"),
]

ADMIN_DSN = os.environ.get(
    "PA_TEST_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"
)
DB_PREFIX = f"pa_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"

DatabaseFactory = Callable[..., str]


@pytest.fixture(params=BACKENDS)
def anyio_backend(request: pytest.FixtureRequest) -> str:
    backend: str = request.param
    return backend


def dsn_for(dbname: str) -> str:
    """The admin DSN pointed at another database."""
    return psycopg.conninfo.make_conninfo(ADMIN_DSN, dbname=dbname)


def _admin_execute(query: sql.Composed) -> None:
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(query)


def create_database(name: str, template: str | None = None) -> str:
    """Create a database (a copy of ``template`` if given); returns its DSN."""
    query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if template is not None:
        query = sql.SQL("{} TEMPLATE {}").format(query, sql.Identifier(template))
    _admin_execute(query)
    return dsn_for(name)


def drop_database(name: str) -> None:
    _admin_execute(
        sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    )


_database_numbers = iter(range(1, 10**9))


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """Name of a database holding the schema: the template of test databases."""
    name = f"{DB_PREFIX}_template"
    dsn = create_database(name)
    try:
        connector = SyncPsycopgConnector(dsn, min_size=0, max_size=1)
        connector.open()
        try:
            connector.schema_apply(SchemaManager.get_schema(), read_migrations())
        finally:
            # No connection may stay on a template while it is copied.
            connector.close()
        yield name
    finally:
        drop_database(name)


@pytest.fixture
def new_database() -> Iterator[DatabaseFactory]:
    """A factory of fresh databases, empty or copied from a template; they are
    dropped after the test. It returns the DSN."""
    created: list[str] = []

    def make(template: str | None = None) -> str:
        name = f"{DB_PREFIX}_{next(_database_numbers)}"
        created.append(name)
        return create_database(name, template)

    yield make
    for name in created:
        drop_database(name)


@pytest.fixture
def pg_dsn(pg_template: str, new_database: DatabaseFactory) -> str:
    """DSN of a fresh database with the schema applied."""
    return new_database(pg_template)


@pytest.fixture
async def pg_connector(pg_dsn: str) -> AsyncIterator[PsycopgConnector]:
    """An open PsycopgConnector on a fresh database."""
    connector = PsycopgConnector(pg_dsn, max_size=4)
    await connector.open_async()
    try:
        yield connector
    finally:
        await connector.close_async()
