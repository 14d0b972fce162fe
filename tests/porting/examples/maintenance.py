# Maintenance: stalled jobs, old jobs, the builtin cleanup task by
# Procrastinate's name, queue counts as dicts.
from procrastinate import App, PsycopgConnector

app = App(connector=PsycopgConnector())


@app.task(queue="q")
def work():
    pass


async def main():
    async with app.open_async():
        await work.defer_async()
        await app.run_worker_async(wait=False, install_signal_handlers=False)
        stalled = await app.job_manager.get_stalled_jobs()
        queues = await app.job_manager.list_queues_async()
        await app.job_manager.delete_old_jobs(nb_hours=0)
        left = len(await app.job_manager.list_jobs_async(queue="q"))
        cleanup = app.configure_task(
            "builtin:procrastinate.builtin_tasks.remove_old_jobs"
        )
        cleanup_id = await cleanup.defer_async(max_hours=1)
        (job,) = await app.job_manager.list_jobs_async(id=cleanup_id)
    queue_counts = [(q["name"], q["succeeded"]) for q in queues]
    return stalled, queue_counts, left, job.task_name
