"""JSON encoding of job arguments and results.

PostgreSQL's ``jsonb`` rejects ``NaN`` and infinities, so they are refused here,
at the API boundary, with an error that names the offending argument.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any, Final, TypeAlias

from ._exceptions import InvalidJobArguments

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

# An escaped NUL: \u0000 after an even number of backslashes (a string
# holding a backslash then "u0000" is fine).
_ESCAPED_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")

MAX_DEPTH: Final = 200
"""The deepest nesting of lists and objects accepted. Python's JSON decoder
stops near its recursion limit (about 1,000 levels, fewer inside a worker's
call stack): a deeper value would be stored, then fail every worker that
reads it."""

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACKET = re.compile(r"[\[\]{}]")

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
        ValueError: a float is NaN or infinite, a string holds the NUL
            character (jsonb cannot store ``\\u0000``) or a lone surrogate,
            or the value is nested too deep for Python's JSON encoder.
    """
    try:
        if encode is None:
            # Not ASCII-only: a lone surrogate would be escaped, and PostgreSQL
            # refuses (or, for two in a row, merges) escaped surrogates. Written
            # as is, it cannot be encoded, which is checked below.
            text = json.dumps(
                value, allow_nan=False, ensure_ascii=False, separators=(",", ":")
            )
        else:
            text = encode(value)
    except RecursionError:
        raise ValueError(_too_deep()) from None
    if "\\u0000" in text and _ESCAPED_NUL.search(text):
        raise ValueError("PostgreSQL cannot store the NUL character (\\u0000) in JSON")
    if not text.isascii():
        try:
            text.encode()
        except UnicodeEncodeError as exc:
            raise ValueError(
                f"A string holds a lone surrogate ({text[exc.start]!r}), which "
                "is not text: PostgreSQL cannot store it"
            ) from None
    return text


def dumps_value(value: JSONValue, encode: Encoder | None = None) -> str:
    """:func:`dumps` for a value users give (job arguments, a task's result):
    also refuses nesting deeper than :data:`MAX_DEPTH`.

    Raises:
        TypeError: as :func:`dumps`.
        ValueError: as :func:`dumps`, or nested too deep.
    """
    text = dumps(value, encode)
    # Cheap for nearly every value: fewer brackets than MAX_DEPTH, no scan.
    if text.count("[") + text.count("{") > MAX_DEPTH and _depth(text) > MAX_DEPTH:
        raise ValueError(_too_deep())
    return text


def _too_deep() -> str:
    return f"JSON nested deeper than {MAX_DEPTH} levels is not accepted"


def _depth(text: str) -> int:
    """The deepest nesting of a JSON text (brackets in strings do not count)."""
    depth = deepest = 0
    for match in _BRACKET.finditer(_STRING.sub('""', text)):
        if match[0] in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


_DECODER: Final = json.JSONDecoder()


def loads(text: str | bytes) -> JSONValue:
    """:func:`json.loads`, for the UTF-8 that PostgreSQL sends at a third of
    its cost (1.7 µs against 0.5 for a job's small arguments, once per
    claimed job): ``json.loads`` sniffs the encoding of bytes, then matches
    whitespace around the value, which ``jsonb`` output never has. Text
    with whitespace or anything else around the value takes the full path."""
    if isinstance(text, bytes):
        text = text.decode()
    try:
        value, end = _DECODER.raw_decode(text)
    except json.JSONDecodeError:
        return _DECODER.decode(text)  # leading whitespace, or its error
    if end != len(text):
        return _DECODER.decode(text)  # trailing whitespace, or its error
    return value


def dumps_arguments(
    task_name: str, arguments: Mapping[str, Any], encode: Encoder | None = None
) -> str:
    """Serialise a job's keyword arguments, naming the first one that fails.

    Raises:
        InvalidJobArguments: an argument is not JSON-serialisable.
    """
    try:
        return dumps_value(dict(arguments), encode)
    except (TypeError, ValueError) as exc:
        for key, value in arguments.items():
            try:
                dumps_value([value], encode)  # the depth it has among the arguments
            except (TypeError, ValueError) as item_exc:
                raise InvalidJobArguments(
                    f"Argument {key!r} of task {task_name!r} is not JSON-serialisable: "
                    f"{item_exc}"
                ) from None
        raise InvalidJobArguments(
            f"Arguments of task {task_name!r} are not JSON-serialisable: {exc}"
        ) from None
