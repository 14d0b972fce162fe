# Scheduling: schedule_at (an aware datetime) and schedule_in (a timedelta's
# keywords); a one-shot worker runs only what is due.
import datetime

from procrastinate import App, PsycopgConnector

app = App(connector=PsycopgConnector())
ran = []


@app.task
def remind(what):
    ran.append(what)


def main():
    now = datetime.datetime.now(datetime.timezone.utc)
    tomorrow = now + datetime.timedelta(days=1)
    with app.open():
        at_id = remind.configure(schedule_at=tomorrow).defer(what="tomorrow")
        in_id = remind.configure(schedule_in={"hours": 2}).defer(what="later")
        remind.configure(schedule_at=now - datetime.timedelta(seconds=1)).defer(
            what="due"
        )
        remind.defer(what="now")
    app.run_worker(wait=False, install_signal_handlers=False)
    with app.open():
        at_job = app.job_manager.list_jobs(id=at_id)[0]
        in_job = app.job_manager.list_jobs(id=in_id)[0]
    two_hours = in_job.scheduled_at - now
    return (
        sorted(ran),
        at_job.scheduled_at == tomorrow,
        datetime.timedelta(hours=2) <= two_hours < datetime.timedelta(hours=3),
        [at_job.status, in_job.status],
    )
