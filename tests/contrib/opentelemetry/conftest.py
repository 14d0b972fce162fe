"""Fixtures of the OpenTelemetry integration's tests: SDK providers of the
test's own (never the global ones), whose spans and metrics stay in memory."""

from __future__ import annotations

import functools
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio
import attrs
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)

import procrastinate_anyio as pa
from procrastinate_anyio.contrib.opentelemetry import instrument
from tests.support import PG_HANG_GUARD_SECONDS

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterator

    from opentelemetry.sdk.trace import ReadableSpan

    from procrastinate_anyio.contrib.opentelemetry import Instrumentation
    from procrastinate_anyio.worker._worker import Worker


@attrs.define
class Telemetry:
    """A tracer provider and a meter provider, read in memory."""

    tracer_provider: TracerProvider
    exporter: InMemorySpanExporter
    meter_provider: MeterProvider
    reader: InMemoryMetricReader

    def instrument(self, app: pa.App, **options: Any) -> Instrumentation:
        return instrument(
            app,
            tracer_provider=self.tracer_provider,
            meter_provider=self.meter_provider,
            **options,
        )

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def span(self, name: str) -> ReadableSpan:
        (found,) = [span for span in self.spans() if span.name == name]
        return found

    def points(self, name: str) -> list[Any]:
        """The data points of metric ``name`` (cumulative, so far)."""
        data = self.reader.get_metrics_data()
        found: list[Any] = []
        if data is None:
            return found
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        found += metric.data.data_points
        return found

    def values(self, name: str, *keys: str) -> dict[tuple[Any, ...], Any]:
        """Metric ``name`` by the values of attributes ``keys``: a sum's or
        gauge's value, a histogram's count."""
        return {
            tuple(point.attributes.get(key) for key in keys): getattr(
                point, "value", getattr(point, "count", None)
            )
            for point in self.points(name)
        }


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    yield Telemetry(tracer_provider, exporter, meter_provider, reader)
    tracer_provider.shutdown()
    meter_provider.shutdown()


@pytest.fixture
def app(pg_connector: pa.PsycopgConnector) -> pa.App:
    """An app on the test's PostgreSQL database (not instrumented yet)."""
    defaults = {"install_signal_handlers": False, "shutdown_graceful_timeout": 2}
    return pa.App(connector=pg_connector, worker_defaults=defaults)


@asynccontextmanager
async def running_worker(app: pa.App, **options: Any) -> AsyncIterator[Worker]:
    """A worker in the background, stopped gracefully when the block ends."""
    with anyio.fail_after(PG_HANG_GUARD_SECONDS):
        async with anyio.create_task_group() as tg:
            worker = await tg.start(functools.partial(app.run_worker, **options))
            yield worker
            worker.stop()


async def run_jobs(app: pa.App, *job_ids: int, **options: Any) -> list[pa.Job]:
    """Run a worker until the jobs are final; returns them."""
    async with running_worker(app, **options):
        return [await app.job_manager.wait_for_job_async(job_id) for job_id in job_ids]


async def until(condition: Callable[[], bool]) -> None:
    """Wait for ``condition`` to hold, checking every 10 ms (bounded by the
    caller's hang guard): for what a worker's timer does, not an event."""
    while True:
        if condition():
            return
        await anyio.sleep(0.01)
