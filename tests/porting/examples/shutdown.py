# Shutdown: a worker in an asyncio task, cancelled; the running job ends.
import asyncio
import contextlib

from procrastinate import App, PsycopgConnector

app = App(connector=PsycopgConnector())
started = None


ended = []


@app.task
async def slow():
    started.set()
    await asyncio.sleep(0.2)
    ended.append("finished")


async def main():
    global started
    started = asyncio.Event()
    async with app.open_async():
        job_id = await slow.defer_async()
        worker = asyncio.create_task(
            app.run_worker_async(
                shutdown_graceful_timeout=10, install_signal_handlers=False
            )
        )
        await started.wait()
        worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await worker
        job = (await app.job_manager.list_jobs_async(id=job_id))[0]
    return job.status, ended[0]
