# A connection of one's own: a defer and a cancel join its transaction, so
# they happen if and only if it commits.
import psycopg
from procrastinate import App, PsycopgConnector

app = App(connector=PsycopgConnector())


@app.task
def send_receipt(order):
    pass


async def main():
    async with app.open_async():
        async with await psycopg.AsyncConnection.connect() as conn:
            await send_receipt.configure(connection=conn).defer_async(order=1)
            await conn.rollback()
            kept = await send_receipt.configure(connection=conn).defer_async(order=2)
            await conn.commit()
            await app.job_manager.cancel_job_by_id_async(kept, connection=conn)
            await conn.rollback()
            orders = [
                job.task_kwargs["order"]
                for job in await app.job_manager.list_jobs_async()
            ]
            status = await app.job_manager.get_job_status_async(kept)
            await app.job_manager.cancel_job_by_id_async(kept, connection=conn)
            await conn.commit()
        cancelled = await app.job_manager.get_job_status_async(kept)
    return orders, status.value, cancelled.value
