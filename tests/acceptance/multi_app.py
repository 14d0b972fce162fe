"""The app that ``test_multi_worker.py`` runs in several worker processes:
``--app tests.acceptance.multi_app.app``.

Its database comes from ``PA_MULTI_TEST_DSN``; the every-second periodic task
is declared only when ``PA_MULTI_TEST_PERIODIC`` is set, so that the other
tests do not get its jobs.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import anyio

import procrastinate_anyio as pa

DSN_ENV_VAR = "PA_MULTI_TEST_DSN"
PERIODIC_ENV_VAR = "PA_MULTI_TEST_PERIODIC"

app = pa.App(
    connector=pa.PsycopgConnector(os.environ.get(DSN_ENV_VAR, "")),
    # Short timings, so that a killed worker is noticed within seconds.
    worker_defaults={
        "stalled_worker_timeout": 2,
        "update_heartbeat_interval": 0.5,
        "fetch_job_polling_interval": 0.2,
        "max_crash_recoveries": 1,
    },
    # Catch up on one second of ticks at most when a worker starts.
    periodic_defaults={"max_delay": 1},
)


@app.task(name="record", lock="line")
async def record(n: int) -> dict[str, Any]:
    """One job of a lock line: when it ran, by the wall clock."""
    start = time.time()
    await anyio.sleep(0.01)  # the job's work: long enough to overlap if it could
    return {"n": n, "start": start, "end": time.time()}


@app.task(name="tick")
async def tick(timestamp: int) -> int:
    return timestamp


if os.environ.get(PERIODIC_ENV_VAR):
    app.periodic(cron="* * * * * *")(tick)


@app.task(name="stalls_once", retry=1, pass_context=True)
async def stalls_once(context: pa.JobContext) -> str:
    """Hangs on its first attempt (until its worker is killed)."""
    if context.job.attempts == 0:  # none ended yet: the first attempt
        await anyio.sleep_forever()
    return "second attempt"


@app.task(name="paused_once", pass_context=True)
async def paused_once(context: pa.JobContext) -> str:
    """Its first run outlasts a pause of its worker (SIGSTOP), so that it is
    recovered and run again elsewhere before the first run returns."""
    if context.job.recoveries == 0:
        await anyio.sleep(1)
        return "first run"
    return "after recovery"


@app.task(name="kills_its_worker")
def kills_its_worker() -> None:
    """Dies as an out-of-memory kill would: its worker with it, every time."""
    os.kill(os.getpid(), signal.SIGKILL)
