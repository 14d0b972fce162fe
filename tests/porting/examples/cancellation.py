# Cancel a waiting job (and delete another); a sync task that sees an abort
# request raises JobAborted. The abort comes from another job of the worker.
import asyncio
import threading

from procrastinate import App, PsycopgConnector, exceptions

app = App(connector=PsycopgConnector())
started = threading.Event()


@app.task(pass_context=True)
def long_one(context):
    started.set()
    while True:
        if context.should_abort():
            raise exceptions.JobAborted("asked to stop")
        threading.Event().wait(0.01)


@app.task
async def stop_it(job_id):
    await asyncio.to_thread(started.wait, 30)
    await app.job_manager.cancel_job_by_id_async(job_id, abort=True)


@app.task
def other():
    pass


def main():
    with app.open():
        cancelled = other.defer()
        deleted = other.defer()
        app.job_manager.cancel_job_by_id(cancelled)
        app.job_manager.cancel_job_by_id(deleted, delete_job=True)
        running = long_one.defer()
        stop_it.defer(job_id=running)
    app.run_worker(concurrency=2, wait=False, install_signal_handlers=False)
    with app.open():
        status = app.job_manager.get_job_status
        return (
            status(cancelled).value,
            status(running).value,
            app.job_manager.list_jobs(id=deleted),
        )
