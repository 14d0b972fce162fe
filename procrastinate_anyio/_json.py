"""JSON encoding of job arguments and results.

PostgreSQL's ``jsonb`` rejects ``NaN`` and infinities, so they are refused here,
at the API boundary, with an error that names the offending argument.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any, TypeAlias

from ._exceptions import InvalidJobArguments

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

# An escaped NUL: \u0000 after an even number of backslashes (a string
# holding a backslash then "u0000" is fine).
_ESCAPED_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")

JSONValue = Any
"""A value that :func:`json.dumps` accepts (dict, list, str, int, float, bool, None)."""

Encoder: TypeAlias = "Callable[[Any], str]"
"""A connector's ``json_dumps``: a value to JSON text (for datetimes and the like)."""


def dumps(value: JSONValue, encode: Encoder | None = None) -> str:
    """Serialise ``value`` to a JSON text that PostgreSQL's jsonb accepts.

    Args:
        encode: the connector's ``json_dumps``, instead of :func:`json.dumps`.

    Raises:
        TypeError: a value is not JSON-serialisable.
        ValueError: a float is NaN or infinite, or a string holds the NUL
            character (jsonb cannot store ``\\u0000``).
    """
    if encode is None:
        text = json.dumps(value, allow_nan=False, separators=(",", ":"))
    else:
        text = encode(value)
    if "\\u0000" in text and _ESCAPED_NUL.search(text):
        raise ValueError("PostgreSQL cannot store the NUL character (\\u0000) in JSON")
    return text


def loads(text: str | bytes) -> JSONValue:
    return json.loads(text)


def dumps_arguments(
    task_name: str, arguments: Mapping[str, Any], encode: Encoder | None = None
) -> str:
    """Serialise a job's keyword arguments, naming the first one that fails.

    Raises:
        InvalidJobArguments: an argument is not JSON-serialisable.
    """
    try:
        return dumps(dict(arguments), encode)
    except (TypeError, ValueError) as exc:
        for key, value in arguments.items():
            try:
                dumps(value, encode)
            except (TypeError, ValueError) as item_exc:
                raise InvalidJobArguments(
                    f"Argument {key!r} of task {task_name!r} is not JSON-serialisable: "
                    f"{item_exc}"
                ) from None
        raise InvalidJobArguments(
            f"Arguments of task {task_name!r} are not JSON-serialisable: {exc}"
        ) from None
