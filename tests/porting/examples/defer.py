# Deferring: configure() with a lock, a priority, a delay; defer by name;
# batch defer.
import datetime

from procrastinate import App, PsycopgConnector

app = App(connector=PsycopgConnector())


@app.task(queue="mail")
def send(to):
    return to


def main():
    with app.open():
        later = send.configure(
            lock="inbox", priority=5, schedule_in={"hours": 1}
        ).defer(to="a")
        by_name = app.configure_task(name="tests.porting.send", allow_unknown=True)
        unknown = by_name.defer(to="b")
        batch = send.batch_defer({"to": "c"}, {"to": "d"})
        jobs = {job.id: job for job in app.job_manager.list_jobs()}
    scheduled = jobs[later].scheduled_at
    return (
        jobs[later].lock,
        jobs[later].priority,
        scheduled > datetime.datetime.now(datetime.timezone.utc),
        jobs[unknown].task_name,
        [jobs[i].task_kwargs["to"] for i in batch],
    )
