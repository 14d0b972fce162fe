"""``instrument()`` itself, on the in-memory connector: its checks,
``uninstrument()``, the propagator, the cost when nothing records, and the
queue depth's errors."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import anyio
import pytest
from opentelemetry.propagators.textmap import DefaultGetter, DefaultSetter
from opentelemetry.trace import NoOpTracerProvider, SpanKind
from opentelemetry.trace.propagation.tracecontext import (
    TraceContextTextMapPropagator,
)

import procrastinate_anyio as pa
from procrastinate_anyio import ConnectorException, Status
from procrastinate_anyio.contrib.opentelemetry import instrument, uninstrument
from tests.support import HANG_GUARD_SECONDS
from tests.unit.conftest import stored_jobs

if TYPE_CHECKING:
    from opentelemetry.context import Context

    from .conftest import Telemetry

pytestmark = pytest.mark.anyio


@pytest.fixture
def memory_app(connector: pa.InMemoryConnector) -> pa.App:
    return pa.App(
        connector=connector,
        worker_defaults={"install_signal_handlers": False, "wait": False},
    )


@pytest.fixture
def connector() -> pa.InMemoryConnector:
    return pa.InMemoryConnector()


async def run(app: pa.App) -> None:
    with anyio.fail_after(HANG_GUARD_SECONDS):
        await app.run_worker_async()


def test_instrument_checks_its_arguments(
    memory_app: pa.App, telemetry: Telemetry
) -> None:
    """Not an App, an app instrumented already, a bad interval: clear errors."""
    with pytest.raises(TypeError, match="App"):
        instrument(pa.Blueprint())  # type: ignore[arg-type]  # the point of the test
    with pytest.raises(ValueError, match="queue_depth_interval"):
        telemetry.instrument(memory_app, queue_depth_interval=0)
    assert memory_app._hooks.run == []

    telemetry.instrument(memory_app)
    with pytest.raises(ValueError, match="instrumented already"):
        telemetry.instrument(memory_app)


async def test_uninstrument(
    memory_app: pa.App, connector: pa.InMemoryConnector, telemetry: Telemetry
) -> None:
    """Once uninstrumented, an app makes no span and writes no header; it
    can be instrumented again."""
    telemetry.instrument(memory_app)
    uninstrument(memory_app)
    uninstrument(memory_app)  # nothing to do

    @memory_app.task
    async def noop() -> None:
        pass

    await noop.defer_async()
    await run(memory_app)

    assert telemetry.spans() == []
    assert [dict(job.headers) for job in stored_jobs(connector)] == [{}]
    assert (memory_app._hooks.defer, memory_app._hooks.run) == ([], [])
    telemetry.instrument(memory_app)


async def test_in_memory_connector(
    memory_app: pa.App, connector: pa.InMemoryConnector, telemetry: Telemetry
) -> None:
    """The in-memory connector carries the context like PostgreSQL: the run
    is the defer's child."""
    telemetry.instrument(memory_app)

    @memory_app.task
    async def noop() -> None:
        pass

    await noop.defer_async()
    await run(memory_app)

    (job,) = stored_jobs(connector)
    assert job.status is Status.SUCCEEDED
    producer, consumer = sorted(telemetry.spans(), key=lambda s: s.kind.value)
    assert (producer.kind, consumer.kind) == (SpanKind.PRODUCER, SpanKind.CONSUMER)
    assert consumer.parent is not None
    assert consumer.parent.span_id == producer.context.span_id


async def test_nothing_recorded_no_headers(
    memory_app: pa.App, connector: pa.InMemoryConnector, telemetry: Telemetry
) -> None:
    """With a provider that records nothing (the API without an SDK), jobs
    get no headers: they cost what uninstrumented jobs cost."""
    instrument(
        memory_app,
        tracer_provider=NoOpTracerProvider(),
        meter_provider=telemetry.meter_provider,
    )

    @memory_app.task
    async def noop() -> None:
        pass

    await noop.defer_async()
    await run(memory_app)

    (job,) = stored_jobs(connector)
    assert (job.status, dict(job.headers)) == (Status.SUCCEEDED, {})
    assert telemetry.values("procrastinate_anyio.jobs.finished") == {(): 1}


class RecordingPropagator(TraceContextTextMapPropagator):
    """W3C trace context, under a header name of its own."""

    def inject(
        self,
        carrier: Any,
        context: Context | None = None,
        setter: Any = DefaultSetter(),  # noqa: B008  # the base class's default
    ) -> None:
        plain: dict[str, str] = {}
        super().inject(plain, context)
        for value in plain.values():
            carrier["x-trace"] = value

    def extract(
        self,
        carrier: Any,
        context: Context | None = None,
        getter: Any = DefaultGetter(),  # noqa: B008  # the base class's default
    ) -> Context:
        return super().extract({"traceparent": carrier["x-trace"]}, context)


async def test_propagator(
    memory_app: pa.App, connector: pa.InMemoryConnector, telemetry: Telemetry
) -> None:
    """A propagator given to instrument() writes and reads the headers."""
    telemetry.instrument(memory_app, propagator=RecordingPropagator())

    @memory_app.task
    async def noop() -> None:
        pass

    await noop.defer_async()
    await run(memory_app)

    (job,) = stored_jobs(connector)
    assert list(job.headers) == ["x-trace"]
    consumer = next(s for s in telemetry.spans() if s.kind is SpanKind.CONSUMER)
    assert consumer.parent is not None


class BrokenStats(pa.InMemoryConnector):
    """Its job counts fail, the way a database that went away does."""

    async def job_stats(self, *args: Any, **kwargs: Any) -> Any:
        raise ConnectorException("the database went away")


async def test_queue_depth_error_keeps_the_last_depths(
    telemetry: Telemetry, caplog: pytest.LogCaptureFixture
) -> None:
    """A failed read of the depths is logged; the gauge keeps the last ones."""
    app = pa.App(connector=pa.InMemoryConnector())
    instrumentation = telemetry.instrument(app)

    @app.task(queue="q")
    async def noop() -> None:
        pass

    await noop.defer_async()
    await instrumentation.refresh_depth()
    with caplog.at_level(logging.WARNING, "procrastinate_anyio.opentelemetry"):
        await instrumentation.refresh_depth(pa.App(connector=BrokenStats()))

    assert [r.action for r in caplog.records] == ["otel_queue_depth_error"]  # type: ignore[attr-defined]  # the record's extra
    assert telemetry.values(
        "procrastinate_anyio.queue.depth", "procrastinate_anyio.job.status"
    ) == {("todo",): 1, ("doing",): 0}
