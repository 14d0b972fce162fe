# Batch defer: many jobs of one task in one call (sync and async), all or
# none; a taken queueing lock refuses the whole batch.
from procrastinate import App, PsycopgConnector, exceptions

app = App(connector=PsycopgConnector())


@app.task(queue="batch")
def square(n):
    return n * n


async def main():
    async with app.open_async():
        first = await square.batch_defer_async({"n": 1}, {"n": 2}, {"n": 3})
        locked = square.configure(queueing_lock="only-one")
        try:
            await locked.batch_defer_async({"n": 4}, {"n": 5})
        except exceptions.AlreadyEnqueued:
            refused = True
        else:
            refused = False
        jobs = await app.job_manager.list_jobs_async(queue="batch")
    return (
        len(first),
        first == sorted(first),
        refused,
        sorted(job.task_kwargs["n"] for job in jobs),
    )
