"""Tests of retry strategies: pure logic, the time passed in."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from procrastinate_anyio import BaseRetryStrategy, Job, RetryDecision, RetryStrategy
from procrastinate_anyio._retry import get_retry_strategy

from .conftest import NOW

SECOND = datetime.timedelta(seconds=1)


def job_after(attempts: int) -> Job:
    return Job(id=1, queue="q", task_name="t", attempts=attempts)


@pytest.mark.parametrize(
    ("strategy", "delays"),
    [
        pytest.param(RetryStrategy(), [0, 0, 0], id="at-once"),
        pytest.param(RetryStrategy(wait=5), [5, 5, 5], id="constant"),
        pytest.param(RetryStrategy(linear_wait=2), [0, 2, 4], id="linear"),
        pytest.param(RetryStrategy(exponential_wait=3), [3, 9, 27], id="exponential"),
        pytest.param(
            RetryStrategy(wait=1, linear_wait=2, exponential_wait=2),
            [3, 7, 13],
            id="all",
        ),
    ],
)
def test_delays(strategy: RetryStrategy, delays: list[float]) -> None:
    """The delay after a failed attempt with n attempts before it is
    wait + linear_wait * n + exponential_wait ** (n + 1), as in Procrastinate."""
    assert [strategy.delay_seconds(n) for n in (0, 1, 2)] == delays


@pytest.mark.parametrize(
    ("attempts", "retried"),
    [
        pytest.param(0, True, id="first"),
        pytest.param(2, True, id="third"),
        pytest.param(3, False, id="fourth"),
        pytest.param(7, False, id="beyond"),
    ],
)
def test_max_attempts(attempts: int, retried: bool) -> None:
    """``max_attempts`` counts retries, as in Procrastinate: with 3, the
    first, second and third attempts (0, 1, 2 attempts before) are retried,
    the fourth fails."""
    decision = RetryStrategy(max_attempts=3, wait=4).get_retry_decision(
        exception=ValueError(), job=job_after(attempts)
    )

    assert (decision is not None) is retried
    if decision is not None:
        assert decision.scheduled_at(NOW) == NOW + 4 * SECOND


def test_no_limit() -> None:
    """Without ``max_attempts`` a job is retried forever."""
    decision = RetryStrategy().get_retry_decision(
        exception=ValueError(), job=job_after(10_000)
    )

    assert decision == RetryDecision(retry_in=0.0)


@pytest.mark.parametrize(
    ("exception", "retried"),
    [
        pytest.param(ConnectionError(), True, id="listed"),
        pytest.param(ConnectionResetError(), True, id="subclass"),
        pytest.param(TimeoutError(), True, id="second-listed"),
        pytest.param(ValueError(), False, id="other"),
    ],
)
def test_retry_exceptions(exception: Exception, retried: bool) -> None:
    """With ``retry_exceptions``, only those exception types are retried."""
    strategy = RetryStrategy(retry_exceptions=[ConnectionError, TimeoutError])

    decision = strategy.get_retry_decision(exception=exception, job=job_after(1))

    assert (decision is not None) is retried
    assert strategy.retry_exceptions == (ConnectionError, TimeoutError)


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({"max_attempts": 0}, id="zero-attempts"),
        pytest.param({"wait": -1}, id="negative-wait"),
        pytest.param({"linear_wait": -0.5}, id="negative-linear"),
        pytest.param({"exponential_wait": -2}, id="negative-exponential"),
    ],
)
def test_strategy_validation(options: dict[str, Any]) -> None:
    """Negative waits and fewer than one attempt are refused."""
    with pytest.raises(ValueError, match="must be"):
        RetryStrategy(**options)


def test_retry_exceptions_validation() -> None:
    """``retry_exceptions`` holds exception classes only."""
    with pytest.raises(TypeError, match="exception classes"):
        RetryStrategy(retry_exceptions=[ValueError, "KeyError"])  # type: ignore[list-item]  # the point of the test


@pytest.mark.parametrize(
    ("retry", "expected"),
    [
        pytest.param(False, None, id="false"),
        pytest.param(None, None, id="none"),
        pytest.param(0, None, id="zero"),
        pytest.param(True, RetryStrategy(), id="true"),
        pytest.param(1, RetryStrategy(max_attempts=1), id="one"),
        pytest.param(5, RetryStrategy(max_attempts=5), id="five"),
    ],
)
def test_get_retry_strategy(retry: Any, expected: RetryStrategy | None) -> None:
    """``retry=`` normalises: n retries is ``max_attempts=n``, n + 1 runs."""
    assert get_retry_strategy(retry) == expected


def test_get_retry_strategy_keeps_strategy() -> None:
    """A strategy object is used as it is."""

    class Custom(BaseRetryStrategy):
        def get_retry_decision(
            self, *, exception: BaseException, job: Job
        ) -> RetryDecision | None:
            return None

    custom = Custom()
    assert get_retry_strategy(custom) is custom


@pytest.mark.parametrize(
    ("retry", "error"),
    [
        pytest.param(-1, ValueError, id="negative"),
        pytest.param(1.5, TypeError, id="float"),
        pytest.param("3", TypeError, id="str"),
        pytest.param(RetryStrategy, TypeError, id="class"),
    ],
)
def test_get_retry_strategy_invalid(retry: Any, error: type[Exception]) -> None:
    """Anything else is refused."""
    with pytest.raises(error):
        get_retry_strategy(retry)


def test_base_strategy_is_abstract() -> None:
    """The base strategy must be subclassed."""
    with pytest.raises(NotImplementedError):
        BaseRetryStrategy().get_retry_decision(exception=ValueError(), job=job_after(1))


@pytest.mark.parametrize(
    ("decision", "expected"),
    [
        pytest.param(RetryDecision(), NOW, id="at-once"),
        pytest.param(RetryDecision(retry_in=90), NOW + 90 * SECOND, id="seconds"),
        pytest.param(
            RetryDecision(retry_in=2.5), NOW + 2.5 * SECOND, id="float-seconds"
        ),
        pytest.param(
            RetryDecision(retry_in=datetime.timedelta(hours=1)),
            NOW + 3600 * SECOND,
            id="timedelta",
        ),
        pytest.param(
            RetryDecision(
                retry_at=datetime.datetime(2040, 1, 1, tzinfo=datetime.timezone.utc)
            ),
            datetime.datetime(2040, 1, 1, tzinfo=datetime.timezone.utc),
            id="at",
        ),
    ],
)
def test_decision_scheduled_at(
    decision: RetryDecision, expected: datetime.datetime
) -> None:
    """A decision resolves to one aware datetime."""
    assert decision.scheduled_at(NOW) == expected


def test_decision_keeps_options() -> None:
    """A decision carries the next attempt's priority, queue and lock."""
    decision = RetryDecision(priority=5, queue="slow", lock="L")

    assert (decision.priority, decision.queue, decision.lock) == (5, "slow", "L")


@pytest.mark.parametrize(
    ("options", "match"),
    [
        pytest.param({"retry_at": NOW, "retry_in": 1}, "not both", id="both"),
        pytest.param(
            {"retry_at": datetime.datetime(2040, 1, 1)}, "timezone-aware", id="naive"
        ),
    ],
)
def test_decision_validation(options: dict[str, Any], match: str) -> None:
    """A decision gives at most one of ``retry_at`` and ``retry_in``, aware."""
    with pytest.raises(ValueError, match=match):
        RetryDecision(**options)
