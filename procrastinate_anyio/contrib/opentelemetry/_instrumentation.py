"""The OpenTelemetry instrumentation: the app's defer and run hooks (see
:mod:`procrastinate_anyio._hooks`) make the spans and the metrics, and a
worker service keeps the queue depths that the gauge reports.

Spans follow OpenTelemetry's messaging conventions (v1.27 and later): a
defer call is a PRODUCER span named ``defer <queue>``
(``messaging.operation.type`` ``send``), a run is a CONSUMER span named
``process <queue>`` (``process``), with the queue as
``messaging.destination.name`` and the job id as ``messaging.message.id``.
The producer's context goes into the job's headers through the propagator
(W3C ``traceparent`` by default) and becomes the run's parent, so both are in
one trace; a job deferred without instrumentation (a periodic one, say)
starts a trace of its own.

A batch defer is one span for the call (``messaging.batch.message_count``),
not one ``create`` span per job: every job of the batch carries its context.

Metric callbacks run in whatever thread the reader exports from: the queue
depth gauge reads a snapshot that each worker's service refreshes every
``queue_depth_interval`` seconds, never the database.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import Counter
from typing import TYPE_CHECKING, Any, Final

import anyio
import attrs
from opentelemetry import context as otel_context
from opentelemetry import metrics, propagate, trace
from opentelemetry.trace import SpanKind, StatusCode

from ..._app import App
from ..._exceptions import ConnectorException
from ..._job import Status
from ..._version import __version__

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping

    from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation
    from opentelemetry.propagators.textmap import TextMapPropagator
    from opentelemetry.trace import TracerProvider
    from opentelemetry.util.types import AttributeValue

    from ..._context import AppLike
    from ..._hooks import DeferCall, JobRun
    from ..._job import Job

logger = logging.getLogger("procrastinate_anyio.opentelemetry")

MESSAGING_SYSTEM: Final = "procrastinate_anyio"
"""The value of ``messaging.system`` on every span and metric."""
ATTRIBUTE_TASK_NAME: Final = "procrastinate_anyio.task.name"
"""The attribute naming the job's task."""
ATTRIBUTE_JOB_STATUS: Final = "procrastinate_anyio.job.status"
"""How an attempt ended (``succeeded``, ``failed``, ``aborted``, or
``retried`` when the job goes back to ``todo``); on the queue depth, the
status counted (``todo`` or ``doing``)."""
ATTRIBUTE_JOB_ATTEMPT: Final = "procrastinate_anyio.job.attempt"
"""Which attempt of the job a run is: 1 for the first."""

DEFAULT_QUEUE_DEPTH_INTERVAL_SECONDS: Final = 10.0

# Semantic conventions' attribute names (incubating there, so written here
# rather than imported from opentelemetry-semantic-conventions).
_SYSTEM: Final = "messaging.system"
_OPERATION_TYPE: Final = "messaging.operation.type"
_OPERATION_NAME: Final = "messaging.operation.name"
_DESTINATION: Final = "messaging.destination.name"
_MESSAGE_ID: Final = "messaging.message.id"
_BATCH_COUNT: Final = "messaging.batch.message_count"
_CLIENT_ID: Final = "messaging.client.id"
_ERROR_TYPE: Final = "error.type"

# Job runs last from milliseconds to hours, so do waits: the SDK's default
# boundaries (0 to 10,000) suit milliseconds, not seconds.
_SECONDS_BUCKETS: Final = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    120.0, 300.0, 600.0, 1800.0, 3600.0,
)  # fmt: skip


def _status_name(status: Status) -> str:
    return "retried" if status is Status.TODO else status.value


def queue_wait_seconds(job: Job) -> float | None:
    """How long the claimed ``job`` waited to start: from when it was
    deferred, or became due (its schedule, its retry time), to its start;
    None when a time is missing."""
    if job.started_at is None or job.created_at is None:
        return None
    ready = job.created_at
    if job.scheduled_at is not None and job.scheduled_at > ready:
        ready = job.scheduled_at
    # The schedule is the client's clock, the start the server's: never < 0.
    return max(0.0, (job.started_at - ready).total_seconds())


@attrs.frozen
class _DepthSnapshot:
    """The job counts the gauge reports, by (queue, status)."""

    counts: Mapping[tuple[str, str], int] = attrs.field(factory=dict)


class Instrumentation:
    """The instrumentation of one app, made by :func:`instrument`.

    Args:
        app: the instrumented app.
        tracer_provider: where spans go (None: the global provider).
        meter_provider: where metrics go (None: the global provider).
        propagator: how the trace context goes into the job's headers (None:
            the global propagator, W3C trace context and baggage by default).
        queue_depth_interval: seconds between two refreshes of the queue
            depths by each worker of the app; None: no queue depth gauge.
    """

    def __init__(
        self,
        app: App,
        *,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        propagator: TextMapPropagator | None = None,
        queue_depth_interval: float | None = DEFAULT_QUEUE_DEPTH_INTERVAL_SECONDS,
    ) -> None:
        if queue_depth_interval is not None and not queue_depth_interval > 0:
            raise ValueError(
                f"queue_depth_interval must be a positive number of seconds or "
                f"None, not {queue_depth_interval!r}"
            )
        self.app = app
        self.queue_depth_interval = queue_depth_interval
        self._propagator = propagator
        self._tracer = trace.get_tracer(
            "procrastinate_anyio", __version__, tracer_provider=tracer_provider
        )
        meter = metrics.get_meter(
            "procrastinate_anyio", __version__, meter_provider=meter_provider
        )
        self._deferred = meter.create_counter(
            "procrastinate_anyio.jobs.deferred",
            unit="{job}",
            description="Jobs deferred (written to the queue).",
        )
        self._started = meter.create_counter(
            "procrastinate_anyio.jobs.started",
            unit="{job}",
            description="Job attempts started by a worker.",
        )
        self._finished = meter.create_counter(
            "procrastinate_anyio.jobs.finished",
            unit="{job}",
            description="Job attempts ended, by how they ended.",
        )
        self._duration = meter.create_histogram(
            "procrastinate_anyio.job.duration",
            unit="s",
            description="How long job attempts ran.",
            explicit_bucket_boundaries_advisory=list(_SECONDS_BUCKETS),
        )
        self._queue_wait = meter.create_histogram(
            "procrastinate_anyio.job.queue_wait",
            unit="s",
            description=(
                "How long jobs waited in the queue: from deferred (or due) to started."
            ),
            explicit_bucket_boundaries_advisory=list(_SECONDS_BUCKETS),
        )
        self._depth = _DepthSnapshot()
        self._refreshers = 0
        if queue_depth_interval is not None:
            meter.create_observable_gauge(
                "procrastinate_anyio.queue.depth",
                callbacks=[self._observe_depth],
                unit="{job}",
                description="Jobs waiting (todo) and running (doing), per queue.",
            )
        self._installed = False

    def __repr__(self) -> str:
        return f"Instrumentation({self.app!r}, installed={self._installed})"

    # -- installation -------------------------------------------------------

    def install(self) -> None:
        """Add the hooks to the app."""
        if self._installed:
            return
        hooks = self.app._hooks
        hooks.defer.append(self._defer_hook)
        hooks.run.append(self._run_hook)
        if self.queue_depth_interval is not None:
            hooks.worker_services.append(self._refresh_depth)
        self._installed = True

    def uninstall(self) -> None:
        """Remove the hooks from the app (running workers keep theirs)."""
        hooks = self.app._hooks
        hooks.defer[:] = [h for h in hooks.defer if h != self._defer_hook]
        hooks.run[:] = [h for h in hooks.run if h != self._run_hook]
        hooks.worker_services[:] = [
            h for h in hooks.worker_services if h != self._refresh_depth
        ]
        self._installed = False

    # -- producer -----------------------------------------------------------

    @contextlib.contextmanager
    def _defer_hook(self, call: DeferCall) -> Iterator[None]:
        jobs = call.jobs
        queues = {job.queue for job in jobs}
        tasks = {job.task_name for job in jobs}
        queue = next(iter(queues)) if len(queues) == 1 else None
        attributes: dict[str, AttributeValue] = {
            _SYSTEM: MESSAGING_SYSTEM,
            _OPERATION_TYPE: "send",
            _OPERATION_NAME: "defer",
        }
        if queue is not None:
            attributes[_DESTINATION] = queue
        if len(tasks) == 1:
            attributes[ATTRIBUTE_TASK_NAME] = next(iter(tasks))
        if len(jobs) != 1:
            attributes[_BATCH_COUNT] = len(jobs)
        name = "defer" if queue is None else f"defer {queue}"
        with self._tracer.start_as_current_span(
            name, kind=SpanKind.PRODUCER, attributes=attributes
        ) as span:
            carrier: dict[str, str] = {}
            self._inject(carrier)
            if carrier:  # nothing without a recording span (no SDK, say)
                call.jobs = [
                    attrs.evolve(job, headers={**job.headers, **carrier})
                    for job in jobs
                ]
            yield
            ids = call.job_ids or []
            if len(ids) == 1:
                span.set_attribute(_MESSAGE_ID, str(ids[0]))
        counts = Counter((job.queue, job.task_name) for job in jobs)
        for (job_queue, task_name), count in counts.items():
            self._deferred.add(
                count,
                {
                    _SYSTEM: MESSAGING_SYSTEM,
                    _DESTINATION: job_queue,
                    ATTRIBUTE_TASK_NAME: task_name,
                },
            )

    def _inject(self, carrier: dict[str, str]) -> None:
        if self._propagator is None:
            propagate.inject(carrier)
        else:
            self._propagator.inject(carrier)

    def _extract(self, headers: Mapping[str, str]) -> otel_context.Context:
        # From an empty context: the worker's own (a span around the whole
        # worker, say) is not the job's parent.
        empty = otel_context.Context()
        if not headers:
            return empty
        if self._propagator is None:
            return propagate.extract(headers, context=empty)
        return self._propagator.extract(headers, context=empty)

    # -- consumer -----------------------------------------------------------

    @contextlib.contextmanager
    def _run_hook(self, run: JobRun) -> Iterator[None]:
        job = run.job
        parent = self._extract(job.headers)
        metric_attributes: dict[str, AttributeValue] = {
            _SYSTEM: MESSAGING_SYSTEM,
            _DESTINATION: job.queue,
            ATTRIBUTE_TASK_NAME: job.task_name,
        }
        span = self._tracer.start_span(
            f"process {job.queue}",
            context=parent,
            kind=SpanKind.CONSUMER,
            attributes={
                **metric_attributes,
                _OPERATION_TYPE: "process",
                _OPERATION_NAME: "process",
                _MESSAGE_ID: str(job.id),
                _CLIENT_ID: run.worker_name,
                ATTRIBUTE_JOB_ATTEMPT: job.attempts + 1,
            },
        )
        self._started.add(1, metric_attributes)
        wait = queue_wait_seconds(job)
        if wait is not None:
            self._queue_wait.record(wait, metric_attributes)
        # Current for the run: the task's own spans (and jobs it defers)
        # nest under it; AnyIO copies it into a sync task's thread.
        token = otel_context.attach(trace.set_span_in_context(span, parent))
        started = time.monotonic()
        try:
            yield
        finally:
            duration = time.monotonic() - started
            otel_context.detach(token)
            self._end_run(span, run, metric_attributes, duration)

    def _end_run(
        self,
        span: trace.Span,
        run: JobRun,
        metric_attributes: dict[str, AttributeValue],
        duration: float,
    ) -> None:
        outcome = run.outcome
        if outcome is None:  # the run was cancelled: no outcome to report
            span.end()
            return
        status = _status_name(outcome.status)
        attributes = {**metric_attributes, ATTRIBUTE_JOB_STATUS: status}
        span.set_attribute(ATTRIBUTE_JOB_STATUS, status)
        error = outcome.error
        if error is not None:
            attributes[_ERROR_TYPE] = error.type
            span.set_attribute(_ERROR_TYPE, error.type)
            # The exception event of the conventions, from the error the
            # worker writes (the exception object is gone by now).
            span.add_event(
                "exception",
                {
                    "exception.type": error.type,
                    "exception.message": error.message,
                    "exception.stacktrace": error.traceback or "",
                },
            )
            span.set_status(StatusCode.ERROR, f"{error.type}: {error.message}")
        span.end()
        self._finished.add(1, attributes)
        self._duration.record(duration, attributes)

    # -- queue depth ----------------------------------------------------------

    async def _refresh_depth(self, app: AppLike) -> None:
        """A worker service: refresh the queue depths every
        ``queue_depth_interval`` seconds, until the worker stops."""
        interval = self.queue_depth_interval
        assert interval is not None  # installed only with an interval
        self._refreshers += 1
        try:
            while True:
                await self.refresh_depth(app)
                await anyio.sleep(interval)
        finally:
            self._refreshers -= 1
            if not self._refreshers:  # no worker keeps it fresh any more
                self._depth = _DepthSnapshot()

    async def refresh_depth(self, app: AppLike | None = None) -> None:
        """Read the queue depths once (what each worker does every
        ``queue_depth_interval`` seconds). A database error is logged, and
        the last depths stay.

        Cancellation: the read is cancelled, the depths stay as they were.
        """
        job_manager = (self.app if app is None else app).job_manager
        try:
            stats = await job_manager.list_queues_async()
        # Never the worker's end: the gauge just keeps its last depths.
        except Exception as exc:
            logger.warning(
                "Could not read the queue depths: %s",
                exc,
                exc_info=not isinstance(exc, ConnectorException),
                extra={"action": "otel_queue_depth_error"},
            )
            return
        counts: dict[tuple[str, str], int] = {}
        for group in stats:
            counts[group.name, Status.TODO.value] = group.todo
            counts[group.name, Status.DOING.value] = group.doing
        self._depth = _DepthSnapshot(counts)

    def _observe_depth(self, options: CallbackOptions) -> Iterable[Observation]:
        # Runs in the reader's thread: reads the snapshot, nothing else.
        return [
            metrics.Observation(
                count,
                {
                    _SYSTEM: MESSAGING_SYSTEM,
                    _DESTINATION: queue,
                    ATTRIBUTE_JOB_STATUS: status,
                },
            )
            for (queue, status), count in self._depth.counts.items()
        ]


def instrument(
    app: App,
    *,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
    propagator: TextMapPropagator | None = None,
    queue_depth_interval: float | None = DEFAULT_QUEUE_DEPTH_INTERVAL_SECONDS,
) -> Instrumentation:
    """Trace and measure the jobs of ``app``: the defers made through it,
    and the runs of its workers (in this process: instrument the app in
    every process that defers or runs jobs).

    Args:
        app: the app to instrument (once).
        tracer_provider: where spans go (None: the global provider).
        meter_provider: where metrics go (None: the global provider).
        propagator: how the trace context travels in the job's headers
            (None: the global propagator).
        queue_depth_interval: seconds between two reads of the queue depths
            by each worker (one count of the jobs by queue and status); None:
            no ``procrastinate_anyio.queue.depth`` gauge.

    Returns:
        The instrumentation; :meth:`Instrumentation.uninstall` (or
        :func:`uninstrument`) removes it.

    Raises:
        TypeError: ``app`` is not an :class:`~procrastinate_anyio.App`.
        ValueError: the app is instrumented already, or a bad interval.
    """
    if not isinstance(app, App):
        raise TypeError(f"instrument() takes an App, not {app!r}")
    if _installed(app) is not None:
        raise ValueError(f"{app!r} is instrumented already")
    instrumentation = Instrumentation(
        app,
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        propagator=propagator,
        queue_depth_interval=queue_depth_interval,
    )
    instrumentation.install()
    return instrumentation


def uninstrument(app: App) -> None:
    """Remove the instrumentation of ``app``, if any (the workers running
    already keep theirs until they stop)."""
    instrumentation = _installed(app)
    if instrumentation is not None:
        instrumentation.uninstall()


def _installed(app: App) -> Instrumentation | None:
    for hook in app._hooks.run:
        owner: Any = getattr(hook, "__self__", None)
        if isinstance(owner, Instrumentation):
            return owner
    return None
