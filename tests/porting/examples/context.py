# The job context: the job, the worker's name and queues, additional context.
from procrastinate import App, PsycopgConnector

app = App(connector=PsycopgConnector())
seen = []


@app.task(pass_context=True, queue="ctx")
async def inspect_me(context, x):
    seen.append(
        (
            context.task.name,
            context.job.task_kwargs,
            context.worker_name,
            context.queues_display,
            context.additional_context["db"],
        )
    )


async def main():
    async with app.open_async():
        await inspect_me.defer_async(x=1)
        await app.run_worker_async(
            name="w1",
            queues=["ctx"],
            wait=False,
            additional_context={"db": "handle"},
            install_signal_handlers=False,
        )
    return seen
