# Testing with the in-memory connector: replace the connector, defer, read
# the jobs, reset.
from procrastinate import App, PsycopgConnector, testing

app = App(connector=PsycopgConnector())


@app.task(queue="mail")
def notify(user):
    pass


def main():
    in_memory = testing.InMemoryConnector()
    with app.replace_connector(in_memory):
        with app.open():
            notify.defer(user=7)
        rows = [
            (r["task_name"], r["args"], r["status"]) for r in in_memory.jobs.values()
        ]
        app.run_worker(wait=False, install_signal_handlers=False)
        statuses = [r["status"] for r in in_memory.jobs.values()]
        in_memory.reset()
        return rows, statuses, in_memory.jobs
