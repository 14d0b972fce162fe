"""OpenTelemetry traces and metrics for an app's jobs (the ``otel`` extra).

::

    from procrastinate_anyio.contrib.opentelemetry import instrument

    instrument(app)  # the global tracer and meter providers
    instrument(app, tracer_provider=tracer_provider, meter_provider=meter_provider)

Deferring a job creates a PRODUCER span, and the job carries its context (in
the job's headers) to the worker, whose CONSUMER span for the run is its
child: one trace from the request that deferred the job to the task that
ran it, following OpenTelemetry's messaging conventions. The same
instrumentation counts jobs deferred, started and finished, measures run
durations and waits in the queue, and reports the depth of each queue.

Only this package imports ``opentelemetry`` (its API alone: the SDK and the
exporters are the application's choice).
"""

from __future__ import annotations

from ._instrumentation import ATTRIBUTE_JOB_ATTEMPT as ATTRIBUTE_JOB_ATTEMPT
from ._instrumentation import ATTRIBUTE_JOB_STATUS as ATTRIBUTE_JOB_STATUS
from ._instrumentation import ATTRIBUTE_TASK_NAME as ATTRIBUTE_TASK_NAME
from ._instrumentation import MESSAGING_SYSTEM as MESSAGING_SYSTEM
from ._instrumentation import Instrumentation as Instrumentation
from ._instrumentation import instrument as instrument
from ._instrumentation import uninstrument as uninstrument

__all__ = [
    "ATTRIBUTE_JOB_ATTEMPT",
    "ATTRIBUTE_JOB_STATUS",
    "ATTRIBUTE_TASK_NAME",
    "MESSAGING_SYSTEM",
    "Instrumentation",
    "instrument",
    "uninstrument",
]
