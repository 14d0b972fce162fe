"""Tests of the JSON encoding of job arguments and results."""

from __future__ import annotations

import datetime
import json
import math
import re
from typing import Any

import pytest

from procrastinate_anyio import InvalidJobArguments, _json
from procrastinate_anyio._json import dumps, dumps_arguments, loads


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(None, id="none"),
        pytest.param({"a": [1, 2.5, "x", True, None]}, id="nested"),
        pytest.param("é中文", id="unicode"),
        pytest.param(2**70, id="big-int"),
    ],
)
def test_round_trip(value: Any) -> None:
    """What ``dumps`` writes, ``loads`` reads back equal."""
    assert loads(dumps(value)) == value
    assert loads(dumps(value).encode()) == value


@pytest.mark.parametrize("text", [' {"a": [1]} \n', b' {"a": [1]} \n'])
def test_loads_reads_what_json_loads_reads(text: str | bytes) -> None:
    """Whitespace around the value is fine, as for json.loads."""
    assert loads(text) == {"a": [1]}


@pytest.mark.parametrize(
    "text",
    [
        pytest.param('{"a": 1} x', id="trailing"),
        pytest.param(b'{"a": "\xff"}', id="not-utf-8"),
        pytest.param("", id="empty"),
    ],
)
def test_loads_refuses_what_json_loads_refuses(text: str | bytes) -> None:
    """Text that is not one JSON value, or bytes that are not UTF-8, raise
    the same error as json.loads."""
    with pytest.raises((json.JSONDecodeError, UnicodeDecodeError)) as expected:
        json.loads(text)
    with pytest.raises(type(expected.value)):
        loads(text)


def test_compact() -> None:
    """The text has no spaces between items."""
    assert dumps({"a": [1, 2], "b": "c d"}) == '{"a":[1,2],"b":"c d"}'


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(math.nan, id="nan"),
        pytest.param(math.inf, id="inf"),
        pytest.param(-math.inf, id="-inf"),
        pytest.param({"deep": [math.nan]}, id="nested-nan"),
    ],
)
def test_refuses_non_finite(value: Any) -> None:
    """NaN and infinities are refused: PostgreSQL's jsonb cannot store them."""
    with pytest.raises(ValueError, match="Out of range float"):
        dumps(value)


def test_refuses_other_types() -> None:
    """Values json does not know are refused."""
    with pytest.raises(TypeError):
        dumps({1, 2})


@pytest.mark.parametrize(
    ("arguments", "name"),
    [
        pytest.param({"ok": 1, "when": datetime.date(2030, 1, 1)}, "when", id="date"),
        pytest.param({"ok": 1, "ratio": math.nan}, "ratio", id="nan"),
        pytest.param({"tags": {"a"}, "ok": 1}, "tags", id="set-first"),
    ],
)
def test_arguments_name_the_culprit(arguments: dict[str, Any], name: str) -> None:
    """Arguments that fail name the first argument at fault, and the task."""
    with pytest.raises(
        InvalidJobArguments, match=f"Argument '{name}' of task 'my.task'"
    ):
        dumps_arguments("my.task", arguments)


def test_arguments_non_string_keys() -> None:
    """Keys that do not serialise fail even when each value does."""
    with pytest.raises(InvalidJobArguments, match=re.escape("'my.task'")):
        dumps_arguments("my.task", {(1, 2): 3})  # type: ignore[dict-item]  # the point of the test


def test_arguments_ok() -> None:
    """Good arguments give the JSON text of the mapping."""
    assert dumps_arguments("t", {"a": 1}) == '{"a":1}'


def _nested(depth: int) -> object:
    value: object = 1
    for _ in range(depth):
        value = [value]
    return value


def test_nesting_is_bounded() -> None:
    """Values nested up to MAX_DEPTH are accepted, deeper ones (even far
    past Python's recursion limit) refused with a ValueError."""
    assert _json.loads(_json.dumps_value(_nested(_json.MAX_DEPTH))) == _nested(
        _json.MAX_DEPTH
    )
    for depth in (_json.MAX_DEPTH + 1, 100_000):
        with pytest.raises(ValueError, match="nested deeper than"):
            _json.dumps_value(_nested(depth))


def test_brackets_in_strings_are_not_nesting() -> None:
    """Brackets inside strings (escaped quotes too) do not count as depth."""
    text = '["[[[[", {"k": "\\"]]]]{{"}, [[1]]]'
    assert _json._depth(text) == 3
    assert _json.dumps_value(["[" * 500]) == '["' + "[" * 500 + '"]'


@pytest.mark.parametrize(
    "value", ["\ud800", "a\udfffb", "\ud83d\ude00", {"\udc80": 1}], ids=repr
)
def test_lone_surrogates_are_refused(value: object) -> None:
    """Lone surrogates (which PostgreSQL refuses or merges) are refused."""
    with pytest.raises(ValueError, match="lone surrogate"):
        _json.dumps(value)


def test_non_ascii_text_round_trips() -> None:
    """Text beyond ASCII is stored as is."""
    value = {"é": "😀 日本", "x": "\u2028"}
    assert _json.loads(_json.dumps(value)) == value
