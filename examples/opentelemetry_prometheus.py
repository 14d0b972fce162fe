"""A worker's OpenTelemetry metrics, served to Prometheus.

    python examples/opentelemetry_prometheus.py [--port 9464] [--jobs N] [--backend trio]

Sets up the OpenTelemetry SDK with a Prometheus reader, serves the metrics
on http://127.0.0.1:PORT/metrics (``--port 0``: a free port, printed),
instruments the app, then runs a worker and defers N jobs to it (every
fifth one fails). It keeps running until Ctrl-C (or SIGTERM), so that
Prometheus (or ``curl``) can read the counters, the histograms of run
durations and queue waits, and the queue depths.

Needs ``pip install procrastinate-anyio[otel] opentelemetry-sdk
opentelemetry-exporter-prometheus``. It uses the database of ``PA_DSN``
(default: ``procrastinate_anyio_demo`` on the local server, which
``examples/demo.py`` creates) and applies the schema.
"""

from __future__ import annotations

import argparse
import functools
import os
import signal

import anyio
import prometheus_client
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource

import procrastinate_anyio as pa
from procrastinate_anyio.contrib.opentelemetry import instrument

DSN = os.environ.get(
    "PA_DSN", "postgresql://postgres@127.0.0.1:5432/procrastinate_anyio_demo"
)

app = pa.App(connector=pa.PsycopgConnector(DSN))


@app.task(queue="otel_example", name="otel_example.work")
async def work(n: int) -> int:
    await anyio.sleep(0.01)  # pretend to do some I/O
    if n % 5 == 4:
        raise ValueError(f"job {n} fails, on purpose")
    return n


async def main(jobs: int, port: int) -> None:
    # The SDK side: what the application chooses, not the library.
    meter_provider = MeterProvider(
        metric_readers=[PrometheusMetricReader()],
        resource=Resource.create({"service.name": "otel-example-worker"}),
    )
    # Read the queue depths every second (the default is 10 s).
    instrument(app, meter_provider=meter_provider, queue_depth_interval=1.0)
    server, _ = prometheus_client.start_http_server(port, addr="127.0.0.1")
    print(f"metrics at http://127.0.0.1:{server.server_port}/metrics", flush=True)
    try:
        async with app.open_async():
            await app.schema_manager.apply_schema_async()  # idempotent
            with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async with anyio.create_task_group() as tg:
                    worker = await tg.start(
                        functools.partial(
                            app.run_worker,
                            queues=["otel_example"],
                            concurrency=4,
                            # The program owns the signals: it stops the group.
                            install_signal_handlers=False,
                        )
                    )
                    ids = await work.batch_defer_async(*({"n": n} for n in range(jobs)))
                    for job_id in ids:
                        await app.job_manager.wait_for_job_async(job_id, timeout=30)
                    print(f"{jobs} jobs done; Ctrl-C to stop", flush=True)
                    async for signum in signals:
                        print(
                            f"got {signal.Signals(signum).name}, stopping", flush=True
                        )
                        tg.cancel_scope.cancel()  # a graceful stop of the worker
                        break
        print(f"stopped: {worker.statistics().jobs_done}", flush=True)
    finally:
        server.shutdown()
        meter_provider.shutdown()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=9464)
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    args = parser.parse_args()
    anyio.run(main, args.jobs, args.port, backend=args.backend)
