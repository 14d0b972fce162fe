# Declaring tasks: a plain one, a named one with aliases, one in a queue with
# a priority and a lock, one that sees its context; deferred through an alias.
from procrastinate import App, PsycopgConnector

app = App(connector=PsycopgConnector())
calls = []


@app.task
def plain(x):
    calls.append(("plain", x))


@app.task(name="renamed", aliases=["old.path.renamed"])
def renamed(x):
    calls.append(("renamed", x))


@app.task(queue="reports", priority=7, lock="report")
def report(day):
    calls.append(("report", day))


@app.task(pass_context=True)
def who_am_i(context):
    calls.append(("context", context.job.task_name))


def main():
    with app.open():
        plain.defer(x=1)
        app.configure_task("old.path.renamed").defer(x=2)
        job_id = report.defer(day="monday")
        job = app.job_manager.list_jobs(id=job_id)[0]
        who_am_i.defer()
    app.run_worker(wait=False, install_signal_handlers=False)
    return (
        renamed.name,
        (job.queue, job.priority, job.lock),
        sorted(c for c in calls if c[0] != "context"),
        [c[1] for c in calls if c[0] == "context"],
    )
