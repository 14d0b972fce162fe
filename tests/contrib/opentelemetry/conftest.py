"""Fixtures of the OpenTelemetry integration's tests: SDK providers of the
test's own (never the global ones), whose spans and metrics stay in memory."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)

from procrastinate_anyio.contrib.opentelemetry import instrument

if TYPE_CHECKING:
    from collections.abc import Iterator

    from opentelemetry.sdk.trace import ReadableSpan

    import procrastinate_anyio as pa
    from procrastinate_anyio.contrib.opentelemetry import Instrumentation


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
