# Middleware (Procrastinate 3.9): per task, worker-wide by kind, and worker
# middleware around every job.
from procrastinate import App, PsycopgConnector

app = App(connector=PsycopgConnector())
log = []


def sync_mw(call_next, context, worker):
    log.append(f"sync:{context.task.name}")
    return call_next()


async def async_mw(call_next, context, worker):
    log.append(f"async:{context.task.name}")
    return await call_next()


async def around(call_next, context, worker):
    log.append("worker>")
    try:
        return await call_next()
    finally:
        log.append("<worker")


@app.task(name="s", task_middleware=[sync_mw])
def s():
    log.append("s")


@app.task(name="a")
async def a():
    log.append("a")


async def main():
    async with app.open_async():
        await s.defer_async()
        await a.defer_async()
        await app.run_worker_async(
            wait=False,
            task_middleware=[async_mw],
            worker_middleware=[around],
            install_signal_handlers=False,
        )
    return log
