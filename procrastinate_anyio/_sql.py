"""Named SQL queries, read from ``sql/queries.sql``.

A block starts with a ``-- name: <name>`` line; its text runs until the next
such line. Comments inside a block stay: PostgreSQL ignores them, and they
show up in ``pg_stat_statements`` with the query.
"""

from __future__ import annotations

import functools
import importlib.resources
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

_NAME_LINE = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


def parse_queries(text: str) -> dict[str, str]:
    """Split a queries file into ``{name: sql}``.

    Raises:
        ValueError: a name is used twice.
    """
    queries: dict[str, str] = {}
    parts = _NAME_LINE.split(text)
    # parts = [preamble, name1, body1, name2, body2, ...]
    for name, body in zip(parts[1::2], parts[2::2], strict=False):
        if name in queries:
            raise ValueError(f"query {name!r} is defined twice")
        queries[name] = body.strip()
    return queries


def read_sql_file(name: str) -> str:
    """The text of a file of the ``sql`` package folder."""
    return (importlib.resources.files(__package__) / "sql" / name).read_text("utf-8")


@functools.cache
def queries() -> Mapping[str, str]:
    """All named queries of the PostgreSQL driver."""
    return parse_queries(read_sql_file("queries.sql"))
