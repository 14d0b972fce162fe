"""Tests of the schema and the migration runner, on real PostgreSQL.

The central check: ``schema.sql`` on an empty database and every migration
file, in order, on another empty database give the same catalog. The catalog
is read from PostgreSQL itself (``pg_get_*def``), restricted to the public
schema's ``pa_*`` objects.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import psycopg
import pytest

import procrastinate_anyio._schema
from procrastinate_anyio import App, PsycopgConnector, SchemaError
from procrastinate_anyio._schema import SchemaManager, migration_names, read_migrations

if TYPE_CHECKING:
    import pathlib

DatabaseFactory = Callable[..., str]

EXTRA_MIGRATION = "0.1.1_01_pre_test.sql"

CATALOG_QUERIES = {
    "relations": """
        SELECT c.relname, c.relkind::text, c.reloptions::text
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relname LIKE 'pa\\_%%'
    """,
    "columns": """
        SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod),
               a.attnotnull, pg_get_expr(d.adbin, d.adrelid), a.attidentity::text,
               a.attgenerated::text
        FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE n.nspname = 'public' AND c.relname LIKE 'pa\\_%%' AND c.relkind = 'r'
          AND a.attnum > 0 AND NOT a.attisdropped
    """,
    "indexes": """
        SELECT indexname, indexdef FROM pg_indexes
        WHERE schemaname = 'public' AND tablename LIKE 'pa\\_%%'
    """,
    "constraints": """
        SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)
        FROM pg_constraint
        WHERE connamespace = 'public'::regnamespace AND conname LIKE 'pa\\_%%'
    """,
    "functions": """
        SELECT proname, pg_get_functiondef(oid) FROM pg_proc
        WHERE pronamespace = 'public'::regnamespace AND proname LIKE 'pa\\_%%'
    """,
    "triggers": """
        SELECT tgname, pg_get_triggerdef(t.oid)
        FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
        WHERE NOT t.tgisinternal AND c.relnamespace = 'public'::regnamespace
          AND c.relname LIKE 'pa\\_%%'
    """,
    "enums": """
        SELECT t.typname, array_agg(e.enumlabel ORDER BY e.enumsortorder)::text
        FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid
        WHERE t.typnamespace = 'public'::regnamespace AND t.typname LIKE 'pa\\_%%'
        GROUP BY t.typname
    """,
}

PUBLIC_OBJECT_NAMES = """
    SELECT 'relation', relname FROM pg_class WHERE relnamespace = 'public'::regnamespace
    UNION ALL SELECT 'type', typname FROM pg_type WHERE typnamespace = 'public'::regnamespace
    UNION ALL SELECT 'function', proname FROM pg_proc WHERE pronamespace = 'public'::regnamespace
    UNION ALL SELECT 'constraint', conname FROM pg_constraint
        WHERE connamespace = 'public'::regnamespace
    UNION ALL SELECT 'trigger', tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
        WHERE NOT t.tgisinternal AND c.relnamespace = 'public'::regnamespace
"""


def execute(dsn: str, query: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        cursor = conn.execute(query.encode())
        return cursor.fetchall() if cursor.description else []


def catalog(dsn: str) -> dict[str, list[tuple[Any, ...]]]:
    """The ``pa_*`` objects of the public schema, as PostgreSQL describes them."""
    return {
        kind: sorted(execute(dsn, query)) for kind, query in CATALOG_QUERIES.items()
    }


def public_object_names(dsn: str) -> set[tuple[str, str]]:
    return set(execute(dsn, PUBLIC_OBJECT_NAMES))


def apply_schema(dsn: str) -> list[str]:
    """Apply the schema the way users do: ``app.schema_manager.apply_schema()``."""
    app = App(connector=PsycopgConnector(dsn))
    with app.open():
        return app.schema_manager.apply_schema()


def applied_migrations(dsn: str) -> list[tuple[str, Any]]:
    return execute(
        dsn, "SELECT name, applied_at FROM pa_schema_migrations ORDER BY name"
    )


@pytest.fixture
def empty_dsn(new_database: DatabaseFactory) -> str:
    return new_database()


def test_catalog_is_not_empty(empty_dsn: str) -> None:
    """The catalog reader sees every kind of object the schema creates."""
    execute(empty_dsn, SchemaManager.get_schema())

    found = catalog(empty_dsn)

    assert all(found.values()), [kind for kind, rows in found.items() if not rows]
    assert (
        "pa_job_status",
        "{todo,doing,succeeded,failed,cancelled,aborted}",
    ) in found["enums"]


def test_migrations_equal_schema(new_database: DatabaseFactory) -> None:
    """Every migration in order gives the same catalog as ``schema.sql``."""
    from_schema = new_database()
    from_migrations = new_database()
    execute(from_schema, SchemaManager.get_schema())

    for _, sql in read_migrations():
        execute(from_migrations, sql)

    expected = catalog(from_schema)
    assert catalog(from_migrations) == expected
    assert catalog(from_schema) == expected  # reading twice gives the same thing


def test_runner_equals_schema(empty_dsn: str, new_database: DatabaseFactory) -> None:
    """The runner on an empty database creates ``schema.sql``'s catalog and
    records every migration."""
    reference = new_database()
    execute(reference, SchemaManager.get_schema())

    applied = apply_schema(empty_dsn)

    assert applied == migration_names()
    assert [name for name, _ in applied_migrations(empty_dsn)] == sorted(applied)
    assert catalog(empty_dsn) == catalog(reference)


def test_apply_idempotent(empty_dsn: str) -> None:
    """A second ``apply_schema`` applies nothing and changes nothing."""
    assert apply_schema(empty_dsn)
    before = (catalog(empty_dsn), applied_migrations(empty_dsn))

    assert apply_schema(empty_dsn) == []

    assert (catalog(empty_dsn), applied_migrations(empty_dsn)) == before


@pytest.fixture
def migrations_with_extra(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> pathlib.Path:
    """A migrations folder with the shipped files and one more, newer."""
    folder = tmp_path / "migrations"
    shutil.copytree(procrastinate_anyio._schema.get_migrations_path(), folder)
    (folder / EXTRA_MIGRATION).write_text("CREATE TABLE pa_test_extra (id integer);\n")
    monkeypatch.setattr(
        procrastinate_anyio._schema, "get_migrations_path", lambda: folder
    )
    return folder


def make_older(dsn: str, folder: pathlib.Path) -> list[str]:
    """Make ``dsn`` a database that has every migration but the extra one."""
    execute(dsn, SchemaManager.get_schema())
    shipped = [name for name in migration_names(folder) if name != EXTRA_MIGRATION]
    values = ", ".join(f"('{name}')" for name in shipped)
    execute(dsn, f"INSERT INTO pa_schema_migrations (name) VALUES {values}")
    return shipped


def test_older_database(empty_dsn: str, migrations_with_extra: pathlib.Path) -> None:
    """On an older database, only the missing migration runs and is recorded."""
    shipped = make_older(empty_dsn, migrations_with_extra)
    before = applied_migrations(empty_dsn)
    app = App(connector=PsycopgConnector(empty_dsn))

    with app.open():
        assert list(app.schema_manager.check_schema().missing) == [EXTRA_MIGRATION]
        assert app.schema_manager.apply_schema() == [EXTRA_MIGRATION]
        assert app.schema_manager.check_schema().is_current

    assert execute(empty_dsn, "SELECT to_regclass('pa_test_extra') IS NOT NULL") == [
        (True,)
    ]
    after = applied_migrations(empty_dsn)
    assert set(before) < set(after)  # the old rows are untouched
    assert sorted(name for name, _ in after) == sorted([*shipped, EXTRA_MIGRATION])


def test_failed_migration_applies_nothing(
    empty_dsn: str, migrations_with_extra: pathlib.Path
) -> None:
    """A migration that fails rolls back the whole run."""
    make_older(empty_dsn, migrations_with_extra)
    (migrations_with_extra / EXTRA_MIGRATION).write_text(
        "CREATE TABLE pa_test_ok (id integer);\nCREATE TABLE pa_test_extra (;\n"
    )
    before = (catalog(empty_dsn), applied_migrations(empty_dsn))

    with pytest.raises(SchemaError, match="syntax"):
        apply_schema(empty_dsn)

    assert (catalog(empty_dsn), applied_migrations(empty_dsn)) == before


def test_jobs_without_migrations_table(empty_dsn: str) -> None:
    """A database with pa_jobs but no pa_schema_migrations is refused untouched."""
    execute(empty_dsn, SchemaManager.get_schema())
    execute(empty_dsn, "DROP TABLE pa_schema_migrations")
    before = catalog(empty_dsn)

    with pytest.raises(SchemaError, match="pa_schema_migrations"):
        apply_schema(empty_dsn)

    assert catalog(empty_dsn) == before


def test_no_procrastinate_names(empty_dsn: str) -> None:
    """Every object the schema creates is named pa_*, none procrastinate_*."""
    assert public_object_names(empty_dsn) == set()

    apply_schema(empty_dsn)

    names = public_object_names(empty_dsn)
    assert names
    assert {
        (kind, name) for kind, name in names if not name.lstrip("_").startswith("pa_")
    } == set()


PROCRASTINATE_STAND_INS = """
CREATE TYPE procrastinate_job_status AS ENUM ('todo', 'doing', 'succeeded', 'failed');
CREATE TABLE procrastinate_workers (id bigserial PRIMARY KEY, last_heartbeat timestamptz);
CREATE TABLE procrastinate_jobs (
    id bigserial PRIMARY KEY,
    queue_name text NOT NULL,
    lock text,
    status procrastinate_job_status NOT NULL DEFAULT 'todo',
    worker_id bigint REFERENCES procrastinate_workers (id)
);
CREATE INDEX procrastinate_jobs_lock_idx ON procrastinate_jobs (lock);
CREATE FUNCTION procrastinate_notify_queue() RETURNS trigger LANGUAGE plpgsql
    AS $$ BEGIN PERFORM pg_notify('procrastinate_any_queue', NEW.queue_name); RETURN NEW; END $$;
CREATE TRIGGER procrastinate_jobs_notify_queue AFTER INSERT ON procrastinate_jobs
    FOR EACH ROW EXECUTE FUNCTION procrastinate_notify_queue();
INSERT INTO procrastinate_jobs (queue_name) VALUES ('default');
"""


def test_coexists_with_procrastinate(
    empty_dsn: str, new_database: DatabaseFactory
) -> None:
    """The schema applies next to a Procrastinate install and leaves it alone."""
    execute(empty_dsn, PROCRASTINATE_STAND_INS)
    theirs = public_object_names(empty_dsn)
    reference = new_database()
    apply_schema(reference)

    assert apply_schema(empty_dsn) == migration_names()

    assert catalog(empty_dsn) == catalog(reference)
    assert public_object_names(empty_dsn) == theirs | public_object_names(reference)
    assert execute(empty_dsn, "SELECT queue_name FROM procrastinate_jobs") == [
        ("default",)
    ]
