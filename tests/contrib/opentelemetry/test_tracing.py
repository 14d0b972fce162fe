"""Traces of deferred and run jobs, against a real PostgreSQL, on asyncio and
trio: the PRODUCER span of a defer and the CONSUMER span of the run are in
one trace, with the messaging conventions' attributes."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import pytest
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode

import procrastinate_anyio as pa
from procrastinate_anyio import RetryStrategy, Status
from procrastinate_anyio.contrib.opentelemetry import (
    ATTRIBUTE_JOB_ATTEMPT,
    ATTRIBUTE_JOB_STATUS,
    ATTRIBUTE_TASK_NAME,
    MESSAGING_SYSTEM,
)
from tests.integration.test_worker import fetch_values

from .conftest import run_jobs, running_worker

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import ReadableSpan

    from .conftest import Telemetry

pytestmark = pytest.mark.anyio


def parent_id(span: ReadableSpan) -> int | None:
    return None if span.parent is None else span.parent.span_id


async def test_defer_then_run_is_one_trace(app: pa.App, telemetry: Telemetry) -> None:
    """A job deferred inside a span: its PRODUCER span is a child of that
    span, the CONSUMER span of its run a child of the PRODUCER span, with the
    conventions' attributes on both."""
    telemetry.instrument(app)

    @app.task(queue="emails", name="send_email")
    async def send_email(to: str) -> None:
        pass

    tracer = telemetry.tracer_provider.get_tracer("test")
    with tracer.start_as_current_span("request") as request:
        job_id = await send_email.defer_async(to="a@b.c")
    (job,) = await run_jobs(app, job_id, name="worker-7")

    producer = telemetry.span("defer emails")
    consumer = telemetry.span("process emails")
    assert (producer.kind, consumer.kind) == (SpanKind.PRODUCER, SpanKind.CONSUMER)
    trace_id = request.get_span_context().trace_id
    assert {producer.context.trace_id, consumer.context.trace_id} == {trace_id}
    assert parent_id(producer) == request.get_span_context().span_id
    assert parent_id(consumer) == producer.context.span_id
    assert dict(producer.attributes or {}) == {
        "messaging.system": MESSAGING_SYSTEM,
        "messaging.operation.type": "send",
        "messaging.operation.name": "defer",
        "messaging.destination.name": "emails",
        "messaging.message.id": str(job_id),
        ATTRIBUTE_TASK_NAME: "send_email",
    }
    assert dict(consumer.attributes or {}) == {
        "messaging.system": MESSAGING_SYSTEM,
        "messaging.operation.type": "process",
        "messaging.operation.name": "process",
        "messaging.destination.name": "emails",
        "messaging.message.id": str(job_id),
        "messaging.client.id": "worker-7",
        ATTRIBUTE_TASK_NAME: "send_email",
        ATTRIBUTE_JOB_ATTEMPT: 1,
        ATTRIBUTE_JOB_STATUS: "succeeded",
    }
    assert consumer.status.status_code is StatusCode.UNSET
    assert job.status is Status.SUCCEEDED
    assert "traceparent" in job.headers


async def test_failed_job_span_is_an_error(app: pa.App, telemetry: Telemetry) -> None:
    """A failed job's CONSUMER span has status ERROR and the exception
    recorded as an event."""
    telemetry.instrument(app)

    @app.task(name="boom")
    async def boom() -> None:
        raise ValueError("no luck")

    (job,) = await run_jobs(app, await boom.defer_async())

    assert job.status is Status.FAILED
    consumer = telemetry.span("process default")
    assert consumer.status.status_code is StatusCode.ERROR
    assert consumer.status.description == "ValueError: no luck"
    (event,) = consumer.events
    assert event.name == "exception"
    attributes = dict(event.attributes or {})
    assert (attributes["exception.type"], attributes["exception.message"]) == (
        "ValueError",
        "no luck",
    )
    assert "raise ValueError" in str(attributes["exception.stacktrace"])
    assert (consumer.attributes or {})[ATTRIBUTE_JOB_STATUS] == "failed"
    assert (consumer.attributes or {})["error.type"] == "ValueError"


async def test_sync_task_spans_nest_under_the_run(
    app: pa.App, telemetry: Telemetry
) -> None:
    """In a sync task's thread, the run's span is current: the task's own
    spans are its children."""
    telemetry.instrument(app)
    tracer = telemetry.tracer_provider.get_tracer("test")
    threads = []

    @app.task(name="crunch")
    def crunch() -> None:
        threads.append(threading.get_ident())
        with tracer.start_as_current_span("inner"):
            pass

    await run_jobs(app, await crunch.defer_async())

    assert threads
    assert threads[0] != threading.get_ident()
    consumer = telemetry.span("process default")
    inner = telemetry.span("inner")
    assert inner.context.trace_id == consumer.context.trace_id
    assert parent_id(inner) == consumer.context.span_id


async def test_async_task_spans_nest_under_the_run(
    app: pa.App, telemetry: Telemetry
) -> None:
    """In an async task, the run's span is current too."""
    telemetry.instrument(app)
    seen = []

    @app.task
    async def look() -> None:
        seen.append(trace.get_current_span().get_span_context().span_id)

    await run_jobs(app, await look.defer_async())

    assert seen == [telemetry.span("process default").context.span_id]


async def test_retries_are_runs_of_one_trace(app: pa.App, telemetry: Telemetry) -> None:
    """Each attempt of a retried job is a CONSUMER span, child of the same
    PRODUCER span (the headers stay on retries): the first one an error with
    status ``retried``, the last one a success."""
    telemetry.instrument(app)
    attempts = []

    @app.task(name="flaky", retry=RetryStrategy(max_attempts=3))
    async def flaky() -> None:
        attempts.append(1)
        if len(attempts) < 3:
            raise ConnectionError("try again")

    (job,) = await run_jobs(app, await flaky.defer_async())

    assert job.status is Status.SUCCEEDED
    producer = telemetry.span("defer default")
    runs = sorted(
        (s for s in telemetry.spans() if s.kind is SpanKind.CONSUMER),
        key=lambda s: str((s.attributes or {})[ATTRIBUTE_JOB_ATTEMPT]),
    )
    assert [
        (
            (s.attributes or {})[ATTRIBUTE_JOB_ATTEMPT],
            (s.attributes or {})[ATTRIBUTE_JOB_STATUS],
            s.status.status_code,
        )
        for s in runs
    ] == [
        (1, "retried", StatusCode.ERROR),
        (2, "retried", StatusCode.ERROR),
        (3, "succeeded", StatusCode.UNSET),
    ]
    assert {parent_id(s) for s in runs} == {producer.context.span_id}
    assert {s.context.trace_id for s in runs} == {producer.context.trace_id}


async def test_job_deferred_by_a_job_continues_the_trace(
    app: pa.App, telemetry: Telemetry
) -> None:
    """A job that a sync task defers is in its run's trace: its PRODUCER
    span a child of the CONSUMER span, its own run a child of that."""
    telemetry.instrument(app)
    children: list[int] = []

    @app.task(name="child")
    async def child() -> None:
        pass

    @app.task(name="parent")
    def parent() -> None:
        children.append(child.defer())  # the sync API, in the task's thread

    job_id = await parent.defer_async()
    async with running_worker(app):
        await app.job_manager.wait_for_job_async(job_id)
        await app.job_manager.wait_for_job_async(children[0])

    def only(kind: SpanKind, task: str) -> ReadableSpan:
        (found,) = [
            s
            for s in telemetry.spans()
            if s.kind is kind and (s.attributes or {})[ATTRIBUTE_TASK_NAME] == task
        ]
        return found

    parent_run = only(SpanKind.CONSUMER, "parent")
    child_defer = only(SpanKind.PRODUCER, "child")
    child_run = only(SpanKind.CONSUMER, "child")
    assert parent_id(parent_run) == only(SpanKind.PRODUCER, "parent").context.span_id
    assert parent_id(child_defer) == parent_run.context.span_id
    assert parent_id(child_run) == child_defer.context.span_id
    assert len({s.context.trace_id for s in telemetry.spans()}) == 1


async def test_job_without_headers_starts_a_trace(
    app: pa.App, telemetry: Telemetry, pg_dsn: str
) -> None:
    """A job deferred before the app was instrumented has no headers (the
    column stays NULL): its run is the root of a trace of its own, even when
    the worker runs inside a span."""

    @app.task
    async def noop() -> None:
        pass

    job_id = await noop.defer_async()
    telemetry.instrument(app)
    tracer = telemetry.tracer_provider.get_tracer("test")
    with tracer.start_as_current_span("around the worker"):
        (job,) = await run_jobs(app, job_id)

    assert dict(job.headers) == {}
    assert await fetch_values(
        pg_dsn, f"SELECT headers IS NULL FROM pa_jobs WHERE id = {job_id}"
    ) == [True]
    consumer = telemetry.span("process default")
    assert consumer.parent is None


async def test_batch_defer_is_one_span(app: pa.App, telemetry: Telemetry) -> None:
    """A batch defer is one PRODUCER span counting its jobs, whose context
    every job of the batch carries."""
    telemetry.instrument(app)

    @app.task(queue="bulk")
    async def item(n: int) -> None:
        pass

    job_ids = await item.batch_defer_async({"n": 1}, {"n": 2}, {"n": 3})
    jobs = await run_jobs(app, *job_ids)

    producer = telemetry.span("defer bulk")
    assert (producer.attributes or {})["messaging.batch.message_count"] == 3
    assert "messaging.message.id" not in (producer.attributes or {})
    runs = [s for s in telemetry.spans() if s.kind is SpanKind.CONSUMER]
    assert sorted(
        str((s.attributes or {})["messaging.message.id"]) for s in runs
    ) == sorted(str(job.id) for job in jobs)
    assert {parent_id(s) for s in runs} == {producer.context.span_id}


async def test_failed_defer_span_is_an_error(app: pa.App, telemetry: Telemetry) -> None:
    """A defer that the database refuses (queueing lock taken) is a PRODUCER
    span with status ERROR, and counts no job."""
    telemetry.instrument(app)

    @app.task(queueing_lock="only-one")
    async def single() -> None:
        pass

    await single.defer_async()
    with pytest.raises(pa.AlreadyEnqueued):
        await single.defer_async()

    failed = [s for s in telemetry.spans() if s.status.status_code is StatusCode.ERROR]
    assert [s.kind for s in failed] == [SpanKind.PRODUCER]
    assert [e.name for e in failed[0].events] == ["exception"]
    assert telemetry.values("procrastinate_anyio.jobs.deferred") == {(): 1}
