"""Turn a call's keyword arguments into a validated job to defer.

Everything a user can get wrong is checked here, before any I/O, so that bad
input raises a clear error and writes nothing.
"""

from __future__ import annotations

import datetime
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from . import _json
from ._clock import SYSTEM_CLOCK
from ._exceptions import InvalidJobArguments
from ._job import JobToDefer
from ._validation import check_name, check_priority

if TYPE_CHECKING:
    from ._job_manager import JobManager

_UNSET: Any = object()


def _check_optional_str(kind: str, value: object) -> str | None:
    if value is not None and not isinstance(value, str):
        raise TypeError(f"{kind} must be a string or None, not {value!r}")
    if value is not None and "\x00" in value:
        raise ValueError(f"{kind} cannot hold the NUL character: {value[:40]!r}")
    return value


def scheduled_at_from(
    schedule_at: datetime.datetime | None,
    schedule_in: Mapping[str, float] | datetime.timedelta | None,
    now: datetime.datetime,
) -> datetime.datetime | None:
    """Resolve ``schedule_at`` / ``schedule_in`` into one aware datetime.

    Raises:
        ValueError: both given, or a naive datetime, or bad ``schedule_in`` keys.
    """
    if schedule_at is not None and schedule_in is not None:
        raise ValueError("give schedule_at or schedule_in, not both")
    if schedule_at is not None:
        if not isinstance(schedule_at, datetime.datetime):
            raise TypeError(f"schedule_at must be a datetime, not {schedule_at!r}")
        if schedule_at.utcoffset() is None:
            raise ValueError(
                "schedule_at must be timezone-aware, e.g. "
                "datetime.datetime.now(datetime.timezone.utc)"
            )
        return schedule_at
    if schedule_in is not None:
        if isinstance(schedule_in, datetime.timedelta):
            return now + schedule_in
        try:
            return now + datetime.timedelta(**schedule_in)
        except (TypeError, OverflowError) as exc:
            raise ValueError(
                f"schedule_in must be a timedelta or timedelta keywords "
                f"(seconds=, minutes=, ...): {exc}"
            ) from None
    return None


@attrs.frozen(kw_only=True)
class JobTemplate:
    """What is fixed before the call's arguments are known: the task and the
    options given to ``@app.task`` and ``configure()``."""

    task_name: str
    queue: str
    priority: int = 0
    lock: str | None = None
    queueing_lock: str | None = None
    schedule_at: datetime.datetime | None = None
    schedule_in: Mapping[str, float] | datetime.timedelta | None = None
    task_kwargs: Mapping[str, Any] = attrs.field(factory=dict)
    check_signature: Callable[[Mapping[str, Any]], None] | None = None

    def __attrs_post_init__(self) -> None:
        check_name("task name", self.task_name)
        check_name("queue", self.queue)
        check_priority(self.priority)
        _check_optional_str("lock", self.lock)
        _check_optional_str("queueing_lock", self.queueing_lock)
        # Validate the schedule now, so that configure() fails, not defer().
        scheduled_at_from(self.schedule_at, self.schedule_in, _epoch())

    def evolve(self, **options: Any) -> JobTemplate:
        """A copy with ``configure()`` options applied."""
        changes = {key: value for key, value in options.items() if value is not _UNSET}
        if "schedule_at" in changes and changes["schedule_at"] is not None:
            changes.setdefault("schedule_in", None)
        if "schedule_in" in changes and changes["schedule_in"] is not None:
            changes.setdefault("schedule_at", None)
        return attrs.evolve(self, **changes)

    def make_job(
        self,
        arguments: Mapping[str, Any],
        now: datetime.datetime,
        encode: _json.Encoder | None = None,
    ) -> JobToDefer:
        """Validate ``arguments`` and build the job.

        Raises:
            InvalidJobArguments: the arguments do not fit the task or are not
                JSON-serialisable.
        """
        merged = {**self.task_kwargs, **arguments}
        if self.check_signature is not None:
            self.check_signature(merged)
        return JobToDefer(
            queue=self.queue,
            task_name=self.task_name,
            args_json=_json.dumps_arguments(self.task_name, merged, encode),
            priority=self.priority,
            lock=self.lock,
            queueing_lock=self.queueing_lock,
            scheduled_at=scheduled_at_from(self.schedule_at, self.schedule_in, now),
        )


def _epoch() -> datetime.datetime:
    return datetime.datetime(2000, 1, 1, tzinfo=datetime.timezone.utc)


def signature_checker(
    func: Callable[..., Any], *, task_name: str, pass_context: bool
) -> Callable[[Mapping[str, Any]], None]:
    """A function that raises InvalidJobArguments when ``func`` cannot be
    called with the given keyword arguments (and the context first, when
    ``pass_context``)."""
    signature = inspect.signature(func)
    leading = (None,) if pass_context else ()
    parameters = list(signature.parameters.values())[len(leading) :]
    by_keyword = (
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
        inspect.Parameter.KEYWORD_ONLY,
    )
    accepted = frozenset(p.name for p in parameters if p.kind in by_keyword)
    required = frozenset(
        p.name
        for p in parameters
        if p.default is inspect.Parameter.empty
        and p.kind is not inspect.Parameter.VAR_POSITIONAL
        and p.kind is not inspect.Parameter.VAR_KEYWORD
    )
    any_keyword = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)

    def check(arguments: Mapping[str, Any]) -> None:
        # A set comparison covers the common case (batch defers call this per
        # job); Signature.bind explains what is wrong when it fails.
        names = arguments.keys()
        if required <= names and (any_keyword or names <= accepted):
            return
        try:
            signature.bind(*leading, **arguments)
        except TypeError as exc:
            raise InvalidJobArguments(
                f"Task {task_name!r} cannot take these arguments: {exc}"
            ) from None
        raise InvalidJobArguments(  # pragma: no cover  # bind agreed after all
            f"Task {task_name!r} cannot take arguments {sorted(names)}"
        )

    return check


class JobDeferrer:
    """Defers jobs of one task with fixed options; returned by
    ``task.configure()`` and ``app.configure_task()``."""

    def __init__(
        self, job_manager: JobManager, template: JobTemplate, *, connection: Any = None
    ) -> None:
        self.job_manager = job_manager
        self.template = template
        self.connection = connection

    def __repr__(self) -> str:
        return (
            f"JobDeferrer({self.template.task_name!r}, queue={self.template.queue!r})"
        )

    def _jobs(self, task_kwargs: Sequence[Mapping[str, Any]]) -> list[JobToDefer]:
        now = SYSTEM_CLOCK.now()
        for kwargs in task_kwargs:
            if not isinstance(kwargs, Mapping):
                raise InvalidJobArguments(
                    f"batch_defer takes one mapping of keyword arguments per job, "
                    f"not {kwargs!r}"
                )
        encode = self.job_manager.json_dumps
        return [self.template.make_job(kwargs, now, encode) for kwargs in task_kwargs]

    async def defer_async(self, **task_kwargs: Any) -> int:
        """Defer one job; returns its id."""
        (job_id,) = await self.job_manager.defer_jobs_async(
            self._jobs([task_kwargs]), connection=self.connection
        )
        return job_id

    def defer(self, **task_kwargs: Any) -> int:
        """Defer one job from sync code (inside ``with app.open():``)."""
        (job_id,) = self.job_manager.defer_jobs(
            self._jobs([task_kwargs]), connection=self.connection
        )
        return job_id

    async def batch_defer_async(self, *task_kwargs: Mapping[str, Any]) -> list[int]:
        """Defer one job per mapping of arguments, all or none; returns the ids."""
        if not task_kwargs:
            return []
        return await self.job_manager.defer_jobs_async(
            self._jobs(task_kwargs), connection=self.connection
        )

    def batch_defer(self, *task_kwargs: Mapping[str, Any]) -> list[int]:
        """The sync twin of :meth:`batch_defer_async`."""
        if not task_kwargs:
            return []
        return self.job_manager.defer_jobs(
            self._jobs(task_kwargs), connection=self.connection
        )
