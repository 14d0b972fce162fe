"""Tests of the SQL files: migration names and order, and the named queries."""

from __future__ import annotations

import pathlib
import re

import pytest

import procrastinate_anyio
from procrastinate_anyio._schema import (
    SchemaManager,
    get_migrations_path,
    migration_names,
    read_migrations,
)
from procrastinate_anyio._sql import parse_queries, queries

PACKAGE = pathlib.Path(procrastinate_anyio.__file__).parent
STATEMENT_NAME = re.compile(r'Statement\(\s*"(\w+)"')


def statement_names() -> set[str]:
    """Query names the package's modules ask for, by ``Statement("name")``."""
    found: set[str] = set()
    for module in PACKAGE.rglob("*.py"):
        found |= set(STATEMENT_NAME.findall(module.read_text("utf-8")))
    return found - {"BEGIN"}  # the transaction marker, not a query


def test_migration_order(tmp_path: pathlib.Path) -> None:
    """Migrations sort by version (numerically), then pre before post, then number."""
    names = [
        "0.10.0_01_pre_a.sql",
        "0.9.0_02_post_b.sql",
        "0.9.0_01_post_c.sql",
        "0.9.0_05_pre_d.sql",
        "1.0.0_01_pre_e.sql",
        "0.9.0_10_pre_f.sql",
    ]
    for name in names:
        (tmp_path / name).write_text("SELECT 1;")
    (tmp_path / "README.md").write_text("not a migration")

    assert migration_names(tmp_path) == [
        "0.9.0_05_pre_d.sql",
        "0.9.0_10_pre_f.sql",
        "0.9.0_01_post_c.sql",
        "0.9.0_02_post_b.sql",
        "0.10.0_01_pre_a.sql",
        "1.0.0_01_pre_e.sql",
    ]


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("0.9_01_pre_x.sql", id="short-version"),
        pytest.param("0.9.0_1_pre_x.sql", id="one-digit-number"),
        pytest.param("0.9.0_01_during_x.sql", id="bad-phase"),
        pytest.param("0.9.0_01_pre_.sql", id="no-what"),
        pytest.param("v0.9.0_01_pre_x.sql", id="prefix"),
        pytest.param("0.9.0_01_pre_x-y.sql", id="dash"),
    ],
)
def test_bad_migration_name(tmp_path: pathlib.Path, name: str) -> None:
    """A badly named migration file is refused, naming the file."""
    (tmp_path / name).write_text("SELECT 1;")

    with pytest.raises(ValueError, match=re.escape(name)):
        migration_names(tmp_path)


def test_shipped_migrations() -> None:
    """The shipped migrations are well named, non-empty, and read in order."""
    names = migration_names()

    assert names
    assert [name for name, _ in read_migrations()] == names
    assert all(sql.strip() for _, sql in read_migrations())
    assert get_migrations_path().is_dir()


def test_schema_file() -> None:
    """``schema.sql`` is readable and creates the migrations table."""
    assert "CREATE TABLE pa_schema_migrations" in SchemaManager.get_schema()


def test_parse_queries() -> None:
    """Blocks run from their name line to the next; the preamble is dropped."""
    text = (
        "-- preamble comment\n"
        "-- name: first\n"
        "-- a comment that stays\n"
        "SELECT 1;\n"
        "\n"
        "-- name: second  \n"
        "SELECT 2;\n"
    )

    assert parse_queries(text) == {
        "first": "-- a comment that stays\nSELECT 1;",
        "second": "SELECT 2;",
    }


def test_parse_queries_duplicate() -> None:
    """A name defined twice is an error."""
    with pytest.raises(ValueError, match="'twice'"):
        parse_queries("-- name: twice\nSELECT 1;\n-- name: twice\nSELECT 2;\n")


def test_queries_used_exist() -> None:
    """Every query the driver asks for is defined, and not empty."""
    defined = queries()

    assert statement_names() - set(defined) == set()
    assert all(defined[name] for name in statement_names())


def test_queries_defined_are_used() -> None:
    """Every defined query is used by the driver (no dead SQL)."""
    assert set(queries()) - statement_names() == set()
