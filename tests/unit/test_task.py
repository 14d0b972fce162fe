"""Tests of ``Task``: names, options and their validation."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from procrastinate_anyio import Blueprint, RetryStrategy, Task


def plain(a: int) -> int:
    return a * 2


async def coroutine(a: int) -> int:
    return a * 3


@pytest.fixture
def bp() -> Blueprint:
    """Tasks are declared the same way on a blueprint and an bp."""
    return Blueprint()


def test_default_name(bp: Blueprint) -> None:
    """A task is named after its function's module and qualified name."""
    task = bp.task(plain)

    assert task.name == "tests.unit.test_task.plain"
    assert bp.get_task("tests.unit.test_task.plain") is task


def test_explicit_name_and_aliases(bp: Blueprint) -> None:
    """A task is found under its name and each alias."""
    task = bp.task(name="new", aliases=["old", "older"])(plain)

    assert (task.name, task.aliases) == ("new", ["old", "older"])
    assert bp.get_task("new") is bp.get_task("old") is bp.get_task("older") is task
    assert list(bp.tasks) == ["new"]


def test_call_runs_function(bp: Blueprint) -> None:
    """Calling a task calls its function directly."""
    task = bp.task(name="t")(plain)

    assert task(a=4) == 8
    assert task.func is plain
    assert repr(task) == "Task('t', queue='default')"


@pytest.mark.parametrize(
    ("func", "is_async"),
    [
        pytest.param(plain, False, id="sync"),
        pytest.param(coroutine, True, id="async"),
    ],
)
def test_is_async(bp: Blueprint, func: Any, is_async: bool) -> None:
    """A task knows whether its function is a coroutine function."""
    assert bp.task(func).is_async is is_async


def test_defaults(bp: Blueprint) -> None:
    """Without options a task gets the default queue, priority and no locks."""
    task = bp.task(plain)

    assert (task.queue, task.priority, task.lock, task.queueing_lock) == (
        "default",
        0,
        None,
        None,
    )
    assert (task.retry_strategy, task.pass_context, task.timeout) == (None, False, None)


def test_options(bp: Blueprint) -> None:
    """Options given to the decorator are kept."""
    task = bp.task(
        queue="q",
        priority=-2,
        lock="L",
        queueing_lock="QL",
        retry=2,
        pass_context=True,
        timeout=datetime.timedelta(minutes=1),
    )(lambda context, a: a)

    assert (task.queue, task.priority, task.lock, task.queueing_lock) == (
        "q",
        -2,
        "L",
        "QL",
    )
    assert task.retry_strategy == RetryStrategy(max_attempts=2)
    assert (task.pass_context, task.timeout) == (True, 60.0)


@pytest.mark.parametrize(
    ("option", "value", "error"),
    [
        pytest.param("name", "", ValueError, id="empty-name"),
        pytest.param("name", "n" * 256, ValueError, id="long-name"),
        pytest.param("name", 12, TypeError, id="int-name"),
        pytest.param("aliases", [""], ValueError, id="empty-alias"),
        pytest.param("aliases", ["a" * 256], ValueError, id="long-alias"),
        pytest.param("queue", "", ValueError, id="empty-queue"),
        pytest.param("queue", "q" * 256, ValueError, id="long-queue"),
        pytest.param("queue", None, TypeError, id="none-queue"),
        pytest.param("priority", 1.5, TypeError, id="float-priority"),
        pytest.param("priority", True, TypeError, id="bool-priority"),
        pytest.param("priority", 2**31, ValueError, id="big-priority"),
        pytest.param("priority", -(2**31) - 1, ValueError, id="small-priority"),
        pytest.param("lock", 5, TypeError, id="int-lock"),
        pytest.param("queueing_lock", b"x", TypeError, id="bytes-queueing-lock"),
        pytest.param("timeout", 0, ValueError, id="zero-timeout"),
        pytest.param("timeout", -1.0, ValueError, id="negative-timeout"),
        pytest.param("timeout", datetime.timedelta(0), ValueError, id="zero-timedelta"),
        pytest.param("timeout", True, ValueError, id="bool-timeout"),
        pytest.param("timeout", "5", ValueError, id="str-timeout"),
        pytest.param("retry", -1, ValueError, id="negative-retry"),
        pytest.param("retry", "yes", TypeError, id="str-retry"),
    ],
)
def test_invalid_option(
    bp: Blueprint, option: str, value: Any, error: type[Exception]
) -> None:
    """An invalid option fails at declaration, and no task is registered."""
    with pytest.raises(error):
        bp.task(**{option: value})(plain)

    assert bp.tasks == {}


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("x", id="one-char"),
        pytest.param("é" * 255, id="255-chars"),
        pytest.param("with spaces:and.dots", id="punctuation"),
    ],
)
def test_valid_names(bp: Blueprint, name: str) -> None:
    """Names of 1 to 255 characters, any characters, are accepted."""
    assert bp.task(name=name, queue=name)(plain).name == name


@pytest.mark.parametrize(
    ("timeout", "seconds"),
    [
        pytest.param(None, None, id="none"),
        pytest.param(3, 3.0, id="int"),
        pytest.param(0.25, 0.25, id="float"),
        pytest.param(datetime.timedelta(milliseconds=1500), 1.5, id="timedelta"),
    ],
)
def test_timeout(bp: Blueprint, timeout: Any, seconds: float | None) -> None:
    """A timeout is stored in seconds."""
    assert bp.task(timeout=timeout)(plain).timeout == seconds


def test_not_callable(bp: Blueprint) -> None:
    """Only functions can be tasks."""
    with pytest.raises(TypeError, match="must be a function"):
        Task(42, blueprint=bp)  # type: ignore[arg-type]  # the point of the test


def test_add_namespace(bp: Blueprint) -> None:
    """A namespace prefixes the name and every alias."""
    task = bp.task(name="t", aliases=["a"])(plain)

    task.add_namespace("ns")

    assert (task.name, task.aliases) == ("ns:t", ["ns:a"])


def test_namespace_too_long(bp: Blueprint) -> None:
    """A namespace that makes the name too long is refused."""
    task = bp.task(name="t" * 250)(plain)

    with pytest.raises(ValueError, match="255"):
        task.add_namespace("space")
