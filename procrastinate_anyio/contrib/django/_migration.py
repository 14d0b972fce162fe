"""The Django migration operation that applies one of the library's SQL
migration files.

The app's Django migrations are one per file of ``sql/migrations/``, each
holding one :class:`ApplySQLMigration`. It runs the library's own migration
runner (the one of ``procrastinate-anyio schema --apply``) with the files up
to its own: the runner takes the same advisory lock, records each file in
``pa_schema_migrations`` and skips those already recorded, so ``migrate`` and
``schema --apply`` can be used in any order, and the version table always
tells what was applied. The SQL is read from the files; none is copied here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db import router
from django.db.migrations.operations.base import Operation

from . import _core

if TYPE_CHECKING:
    from django.db.backends.base.schema import BaseDatabaseSchemaEditor
    from django.db.migrations.state import ProjectState


class ApplySQLMigration(Operation):
    """Apply the SQL migration file ``name`` (and any earlier one missing) to
    the database of ``PROCRASTINATE_ANYIO_DATABASE_ALIAS``.

    Args:
        name: a file name of ``procrastinate_anyio/sql/migrations/``.
    """

    reversible = False
    reduces_to_sql = True  # sqlmigrate shows the file

    def __init__(self, name: str) -> None:
        self.name = name

    def deconstruct(self) -> tuple[str, list[Any], dict[str, Any]]:
        return (
            "procrastinate_anyio.contrib.django._migration.ApplySQLMigration",
            [self.name],
            {},
        )

    def describe(self) -> str:
        return f"Apply procrastinate_anyio's SQL migration {self.name}"

    def state_forwards(self, app_label: str, state: ProjectState) -> None:
        """No model state changes: the models' state is in CreateModel."""

    def _files(self) -> list[tuple[str, str]]:
        files = _core.read_migrations()
        names = [name for name, _ in files]
        if self.name not in names:
            raise ValueError(f"No SQL migration file named {self.name!r}")
        return files[: names.index(self.name) + 1]

    def database_forwards(
        self,
        app_label: str,
        schema_editor: BaseDatabaseSchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        from . import app
        from ._connector import DjangoSyncConnector

        connection = schema_editor.connection
        if connection.alias != app.connector.alias or not router.allow_migrate(
            connection.alias, app_label
        ):
            return
        files = self._files()
        if schema_editor.collect_sql:  # sqlmigrate: show the file
            schema_editor.collected_sql.append(f"-- {self.name}\n{files[-1][1]}")
            return
        # The files up to this one are the schema at this point: an empty
        # database gets them all, an older one the ones it misses.
        schema_sql = "\n".join(sql for _, sql in files)
        DjangoSyncConnector(connection.alias).schema_apply(schema_sql, files)

    def database_backwards(
        self,
        app_label: str,
        schema_editor: BaseDatabaseSchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:  # pragma: no cover  # Django refuses first: reversible is False
        raise NotImplementedError("procrastinate_anyio's migrations are irreversible")
