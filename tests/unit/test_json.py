"""Tests of the JSON encoding of job arguments and results."""

from __future__ import annotations

import datetime
import math
import re
from typing import Any

import pytest

from procrastinate_anyio import InvalidJobArguments
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
