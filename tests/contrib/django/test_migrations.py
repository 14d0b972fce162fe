"""The Django migrations: generated from the library's SQL files, and in
agreement with ``procrastinate-anyio schema --apply``."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import psycopg
import pytest
from django.core.management import call_command
from django.db import connections
from django.db.migrations.loader import MigrationLoader

from procrastinate_anyio import SchemaManager, SyncPsycopgConnector
from procrastinate_anyio.contrib.django import app
from procrastinate_anyio.contrib.django._core import migration_names, read_migrations
from procrastinate_anyio.contrib.django._migration import ApplySQLMigration

from .conftest import database_name, use_database

if TYPE_CHECKING:
    from tests.conftest import DatabaseFactory

LABEL = "procrastinate_anyio"


def sql_files_of_django_migrations() -> list[str]:
    """The SQL file of each of the app's Django migrations, in graph order."""
    loader = MigrationLoader(None, ignore_no_migrations=True)
    plan = loader.graph.forwards_plan((LABEL, loader.graph.leaf_nodes(LABEL)[0][1]))
    names = []
    for key in plan:
        if key[0] != LABEL:
            continue
        operations = loader.graph.nodes[key].operations
        sql_ops = [op for op in operations if isinstance(op, ApplySQLMigration)]
        assert len(sql_ops) == 1, key
        names.append(sql_ops[0].name)
    return names


def test_one_django_migration_per_sql_file() -> None:
    """The Django migrations apply the SQL migration files, one each, in order."""
    assert sql_files_of_django_migrations() == migration_names()


def test_no_missing_django_migration(django_db: str) -> None:
    """The models' state in the migrations matches the models."""
    call_command("makemigrations", LABEL, check=True, dry_run=True, verbosity=0)


def applied(dsn: str) -> list[str]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT name FROM pa_schema_migrations ORDER BY name")
        return [row[0] for row in rows]


def schema_apply(dsn: str) -> list[str]:
    """What ``procrastinate-anyio schema --apply`` applies to ``dsn``."""
    connector = SyncPsycopgConnector(dsn, min_size=0, max_size=1)
    connector.open()
    try:
        return connector.schema_apply(SchemaManager.get_schema(), read_migrations())
    finally:
        connector.close()


def test_migrate_then_schema_apply(new_database: DatabaseFactory) -> None:
    """``migrate`` on an empty database records every SQL file, so that
    ``schema --apply`` afterwards has nothing to do."""
    dsn = new_database()
    use_database(database_name(dsn))
    try:
        call_command("migrate", LABEL, verbosity=0)

        assert applied(dsn) == migration_names()
        assert schema_apply(dsn) == []
    finally:
        connections["default"].close()


def test_schema_apply_then_migrate(new_database: DatabaseFactory) -> None:
    """After ``schema --apply``, ``migrate`` records the Django migrations and
    changes nothing in the library's tables."""
    dsn = new_database()
    assert schema_apply(dsn) == migration_names()
    use_database(database_name(dsn))
    try:
        call_command("migrate", LABEL, verbosity=0)

        assert applied(dsn) == migration_names()
        assert app.schema_manager.check_schema().is_current
    finally:
        connections["default"].close()


def test_second_migrate_changes_nothing(django_db: str) -> None:
    """A second ``migrate`` finds nothing to do."""
    out = io.StringIO()

    call_command("migrate", verbosity=1, stdout=out)

    assert "No migrations to apply" in out.getvalue()
    assert applied(django_db) == migration_names()


def test_sqlmigrate_shows_the_sql_file(django_db: str) -> None:
    """``sqlmigrate`` prints the SQL file the migration applies."""
    out = io.StringIO()

    call_command("sqlmigrate", LABEL, "0001", stdout=out)

    assert "CREATE TABLE pa_jobs" in out.getvalue()


@pytest.mark.parametrize(
    "name", [pytest.param("0.0.0_01_pre_nothing.sql", id="unknown")]
)
def test_unknown_sql_file(name: str) -> None:
    """An operation naming a file that does not exist says so."""
    with pytest.raises(ValueError, match="No SQL migration file"):
        ApplySQLMigration(name)._files()
