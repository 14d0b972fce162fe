"""The schema and its migrations.

``sql/schema.sql`` is the whole current schema; ``sql/migrations/`` holds one
plain SQL file per change, named ``{version}_{nn}_{pre|post}_{what}.sql`` and
applied in that order. The runner records applied files in
``pa_schema_migrations``: an empty database gets ``schema.sql`` (and every
migration marked applied), an older one gets the files it misses, an
up-to-date one gets nothing. Runs are serialised by an advisory lock, so two
processes applying at once do not collide.
"""

from __future__ import annotations

import importlib.resources
import pathlib
import re
from typing import TYPE_CHECKING

import attrs

from ._exceptions import ConnectorException, SchemaError
from ._sql import read_sql_file

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ._job_manager import SyncConnectorSlot
    from .connectors._protocols import AsyncConnector

_MIGRATION_NAME = re.compile(
    r"^(?P<version>\d+\.\d+\.\d+)_(?P<number>\d{2})_(?P<phase>pre|post)_(?P<what>\w+)\.sql$"
)


def _sort_key(name: str) -> tuple[tuple[int, ...], bool, int]:
    match = _MIGRATION_NAME.match(name)
    if match is None:
        raise ValueError(
            f"bad migration file name {name!r}: expected "
            "{version}_{nn}_{pre|post}_{what}.sql"
        )
    version = tuple(int(part) for part in match["version"].split("."))
    # Within a version: pre before post, then by number.
    return version, match["phase"] == "post", int(match["number"])


def migration_names(folder: pathlib.Path | None = None) -> list[str]:
    """The migration file names, in the order they apply."""
    folder = folder or get_migrations_path()
    return sorted(
        (p.name for p in folder.iterdir() if p.suffix == ".sql"), key=_sort_key
    )


def get_migrations_path() -> pathlib.Path:
    """The folder of the migration files (``schema --migrations-path``)."""
    return pathlib.Path(
        str(importlib.resources.files(__package__) / "sql" / "migrations")
    )


def read_migrations() -> list[tuple[str, str]]:
    """``(name, sql)`` of every migration, in order."""
    folder = get_migrations_path()
    return [
        (name, (folder / name).read_text("utf-8")) for name in migration_names(folder)
    ]


@attrs.frozen
class SchemaStatus:
    """Where a database stands against this version of the library.

    ``missing``: migrations not applied yet; ``unknown``: applied migrations
    this version does not know (the database is newer than the code).
    ``exists`` is False when there is no schema at all.
    """

    exists: bool
    applied: Sequence[str]
    missing: Sequence[str]
    unknown: Sequence[str]

    @property
    def is_current(self) -> bool:
        return self.exists and not self.missing and not self.unknown

    def describe(self) -> str:
        if not self.exists:
            return "no schema: run `procrastinate-anyio schema --apply`"
        if self.missing:
            return (
                f"{len(self.missing)} migration(s) to apply: {', '.join(self.missing)}"
            )
        if self.unknown:
            return (
                "the database has migrations this version does not know: "
                f"{', '.join(self.unknown)}"
            )
        return f"up to date ({len(self.applied)} migration(s) applied)"


def _status(applied: list[str] | None) -> SchemaStatus:
    known = [name for name, _ in read_migrations()]
    if applied is None:
        return SchemaStatus(exists=False, applied=(), missing=tuple(known), unknown=())
    done = set(applied)
    return SchemaStatus(
        exists=True,
        applied=tuple(applied),
        missing=tuple(name for name in known if name not in done),
        unknown=tuple(sorted(done - set(known))),
    )


class SchemaManager:
    """Applies and checks the schema. Reach it as ``app.schema_manager``."""

    def __init__(self, connector: AsyncConnector, sync_slot: SyncConnectorSlot) -> None:
        self.connector = connector
        self._sync_slot = sync_slot

    @staticmethod
    def get_schema() -> str:
        """The text of ``schema.sql``."""
        return read_sql_file("schema.sql")

    @staticmethod
    def get_migrations_path() -> pathlib.Path:
        return get_migrations_path()

    async def apply_schema_async(self) -> list[str]:
        """Create the schema or apply the missing migrations; idempotent.

        Returns:
            the names of the migrations applied by this call (empty when the
            database was up to date).
        """
        try:
            return await self.connector.schema_apply(
                self.get_schema(), read_migrations()
            )
        except ConnectorException as exc:
            # A refused statement is a schema problem; a lost connection is not.
            if exc.transient:
                raise
            raise SchemaError(f"Applying the schema failed: {exc}") from exc

    def apply_schema(self) -> list[str]:
        """The sync twin of :meth:`apply_schema_async` (inside ``app.open()``)."""
        try:
            return self._sync_slot.get().schema_apply(
                self.get_schema(), read_migrations()
            )
        except ConnectorException as exc:
            # A refused statement is a schema problem; a lost connection is not.
            if exc.transient:
                raise
            raise SchemaError(f"Applying the schema failed: {exc}") from exc

    async def check_schema_async(self) -> SchemaStatus:
        """Compare the database's migrations with this version's."""
        return _status(await self.connector.schema_applied_migrations())

    def check_schema(self) -> SchemaStatus:
        return _status(self._sync_slot.get().schema_applied_migrations())
