"""Fixtures of the Django integration's tests.

Django is set up once, on ``tests.contrib.django.settings``. A template
database is migrated once with ``manage.py migrate`` (Django's apps, the test
app and ours); each test that needs the database gets a fresh copy, which the
``default`` alias points at for the test (every thread's connection reads the
same settings dict).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest

pytest.importorskip("django")

import django  # only once Django is known to be installed

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.contrib.django.settings")
django.setup()

from django.test.utils import setup_test_environment  # noqa: E402

setup_test_environment()  # as Django's test runner: responses keep their context

from django.core.management import call_command  # noqa: E402
from django.db import connections  # noqa: E402

from tests.conftest import DB_PREFIX, drop_database  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.conftest import DatabaseFactory


def use_database(name: str) -> None:
    """Point the ``default`` alias at database ``name`` (closing the
    connection of this thread to the previous one)."""
    connections["default"].close()
    connections["default"].settings_dict["NAME"] = name


def database_name(dsn: str) -> str:
    import psycopg

    name: str = psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]  # type: ignore[assignment]  # always a str here
    return name


@pytest.fixture(scope="session")
def django_template() -> Iterator[str]:
    """A database migrated by ``manage.py migrate``: the template of the
    Django tests' databases."""
    from tests.conftest import create_database

    name = f"{DB_PREFIX}_django_template"
    create_database(name)
    try:
        use_database(name)
        call_command("migrate", verbosity=0)
        connections["default"].close()  # no connection may stay on a template
        yield name
    finally:
        connections["default"].close()
        drop_database(name)


@pytest.fixture
def django_db(django_template: str, new_database: DatabaseFactory) -> Iterator[str]:
    """A fresh migrated database behind the ``default`` alias; its DSN."""
    dsn = new_database(django_template)
    use_database(database_name(dsn))
    try:
        yield dsn
    finally:
        connections["default"].close()
