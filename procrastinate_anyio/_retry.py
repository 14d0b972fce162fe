"""Retry strategies: when a failed job runs again. Pure logic, no I/O: the
time is passed in."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, TypeAlias

import attrs

from ._job import Status
from .connectors._types import JobOutcome

if TYPE_CHECKING:
    from collections.abc import Iterable

    from ._job import Job, JobError


def _to_retry_in(
    value: datetime.timedelta | float | Mapping[str, float] | None,
) -> datetime.timedelta | float | None:
    """``retry_in`` as seconds or a timedelta; a mapping (Procrastinate's
    documented form, ``{"seconds": 5}``) holds ``timedelta`` arguments."""
    if value is None or isinstance(value, (datetime.timedelta, int, float)):
        return value
    if isinstance(value, Mapping):
        try:
            return datetime.timedelta(**value)
        except TypeError as exc:
            raise TypeError(f"retry_in: {exc}") from None
    raise TypeError(
        f"retry_in must be seconds, a timedelta or a mapping, not {value!r}"
    )


@attrs.frozen(kw_only=True)
class RetryDecision:
    """Retry the job, when and where.

    Give ``retry_at`` (an aware datetime) or ``retry_in`` (seconds, a
    timedelta, or ``timedelta`` arguments such as ``{"seconds": 5}``), not
    both; neither means at once. ``priority``, ``queue`` and ``lock``, when
    given, replace the job's for the next attempt.
    """

    retry_at: datetime.datetime | None = None
    retry_in: datetime.timedelta | float | None = attrs.field(
        default=None, converter=_to_retry_in
    )
    priority: int | None = None
    queue: str | None = None
    lock: str | None = None

    def __attrs_post_init__(self) -> None:
        if self.retry_at is not None and self.retry_in is not None:
            raise ValueError("give retry_at or retry_in, not both")
        if self.retry_at is not None and self.retry_at.utcoffset() is None:
            raise ValueError("retry_at must be timezone-aware")

    def scheduled_at(self, now: datetime.datetime) -> datetime.datetime:
        """When the next attempt may start."""
        if self.retry_at is not None:
            return self.retry_at
        if self.retry_in is None:
            return now
        delta = (
            self.retry_in
            if isinstance(self.retry_in, datetime.timedelta)
            else datetime.timedelta(seconds=self.retry_in)
        )
        return now + delta


class BaseRetryStrategy:
    """Decides whether a failed job is retried. Subclass it and override
    :meth:`get_retry_decision`."""

    def get_retry_decision(
        self, *, exception: BaseException, job: Job
    ) -> RetryDecision | None:
        """Return a :class:`RetryDecision` to retry, None to fail the job.

        Args:
            exception: what the attempt raised.
            job: the job as it was claimed; ``job.attempts`` counts the
                attempts before this one (0 the first time), as in
                Procrastinate.
        """
        raise NotImplementedError


def _check_exceptions(
    _: object,
    __: attrs.Attribute[tuple[type[BaseException], ...] | None],
    value: tuple[type[BaseException], ...] | None,
) -> None:
    if value is None:
        return
    for item in value:
        if not (isinstance(item, type) and issubclass(item, BaseException)):
            raise TypeError(f"retry_exceptions must be exception classes, not {item!r}")


def _check_max_attempts(
    _: object, __: attrs.Attribute[int | None], value: int | None
) -> None:
    if value is not None and value < 1:
        raise ValueError(f"max_attempts must be at least 1, not {value}")


def _to_exceptions(
    value: Iterable[type[BaseException]] | None,
) -> tuple[type[BaseException], ...] | None:
    return None if value is None else tuple(value)


@attrs.frozen(kw_only=True)
class RetryStrategy(BaseRetryStrategy):
    """Retry a failed job up to ``max_attempts`` times, waiting
    ``wait + linear_wait * attempts + exponential_wait ** (attempts + 1)``
    seconds, where ``attempts`` counts the attempts before the one that
    failed (0 after the first). The numbers are Procrastinate's: with
    ``max_attempts=2`` a job that keeps failing runs 3 times.

    Args:
        max_attempts: the most retries a job gets, so ``max_attempts + 1``
            runs in all. None: no limit.
        wait: constant part of the delay, in seconds.
        linear_wait: part of the delay that grows with each attempt.
        exponential_wait: base of the part of the delay that grows
            exponentially (0: none).
        retry_exceptions: retry only on these exception types (None: any
            exception).
    """

    max_attempts: int | None = attrs.field(default=None, validator=_check_max_attempts)
    wait: float = attrs.field(default=0.0, validator=attrs.validators.ge(0))
    linear_wait: float = attrs.field(default=0.0, validator=attrs.validators.ge(0))
    exponential_wait: float = attrs.field(default=0.0, validator=attrs.validators.ge(0))
    retry_exceptions: tuple[type[BaseException], ...] | None = attrs.field(
        default=None, converter=_to_exceptions, validator=_check_exceptions
    )

    def delay_seconds(self, attempts: int) -> float:
        """The wait before the next attempt, when the attempt that failed had
        ``attempts`` attempts before it."""
        exponential = (
            self.exponential_wait ** (attempts + 1) if self.exponential_wait else 0.0
        )
        return self.wait + self.linear_wait * attempts + exponential

    def get_retry_decision(
        self, *, exception: BaseException, job: Job
    ) -> RetryDecision | None:
        if self.max_attempts is not None and job.attempts >= self.max_attempts:
            return None
        if self.retry_exceptions is not None and not isinstance(
            exception, self.retry_exceptions
        ):
            return None
        return RetryDecision(retry_in=self.delay_seconds(job.attempts))


RetryValue: TypeAlias = "bool | int | BaseRetryStrategy | None"
"""What ``@app.task(retry=...)`` accepts."""


def get_retry_strategy(retry: RetryValue) -> BaseRetryStrategy | None:
    """Normalise the ``retry`` option of a task.

    ``False``/``None``: never retry; ``True``: retry forever, at once; an int
    ``n``: ``n`` retries (``RetryStrategy(max_attempts=n)``), so ``n + 1``
    runs; a strategy: itself.
    """
    if retry is None or retry is False:
        return None
    if retry is True:
        return RetryStrategy()
    if isinstance(retry, bool) or not isinstance(retry, (int, BaseRetryStrategy)):
        raise TypeError(
            f"retry must be a bool, an int or a retry strategy, not {retry!r}"
        )
    if isinstance(retry, int):
        if retry < 0:
            raise ValueError(f"retry must be at least 0, not {retry}")
        return RetryStrategy(max_attempts=retry) if retry else None
    return retry


def retry_outcome(
    job: Job,
    exception: BaseException,
    strategy: BaseRetryStrategy | None,
    now: datetime.datetime,
    *,
    otherwise: Status,
    error: JobError,
) -> JobOutcome:
    """Where a job goes after an attempt that ended with ``exception``: back
    to ``todo`` when the retry strategy says so (at its time, with its
    priority, queue and lock), else to ``otherwise``. Shared by the job
    runner (a task that raised, a shutdown) and the rescuer (a dead worker's
    job)."""
    decision = (
        None
        if strategy is None
        else strategy.get_retry_decision(exception=exception, job=job)
    )
    if decision is None:
        return JobOutcome(job_id=job.id, status=otherwise, error=error, lock=job.lock)
    return JobOutcome(
        job_id=job.id,
        status=Status.TODO,
        error=error,
        lock=job.lock,
        retry_at=decision.scheduled_at(now),
        retry_priority=decision.priority,
        retry_queue=decision.queue,
        retry_lock=decision.lock,
    )
