# Periodic tasks: a cron schedule (every second: six fields, seconds last);
# the worker defers each tick once and the task receives its timestamp.
import asyncio
import contextlib
import time

from procrastinate import App, PsycopgConnector

app = App(connector=PsycopgConnector())
ticks = []
ticked = None


@app.periodic(cron="* * * * * *", periodic_id="every-second")
@app.task(queue="clock")
async def tick(timestamp):
    ticks.append(timestamp)
    ticked.set()


async def main():
    global ticked
    ticked = asyncio.Event()
    async with app.open_async():
        worker = asyncio.create_task(
            app.run_worker_async(queues=["clock"], install_signal_handlers=False)
        )
        await asyncio.wait_for(ticked.wait(), timeout=30)
        worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await worker
    first = ticks[0]
    return type(first).__name__, first <= time.time() + 1, len(set(ticks)) == len(ticks)
