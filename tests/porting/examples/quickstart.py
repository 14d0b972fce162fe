# The quickstart, written for Procrastinate: a sync script defers jobs, then
# runs a one-shot worker on them.
from procrastinate import App, PsycopgConnector

app = App(connector=PsycopgConnector())


@app.task(name="sum", queue="sums")
def sum_(a, b):
    return a + b


def main():
    with app.open():
        ids = [sum_.defer(a=a, b=b) for a, b in [(1, 2), (3, 4), (5, 6)]]
    app.run_worker(queues=["sums"], wait=False, install_signal_handlers=False)
    with app.open():
        return [app.job_manager.list_jobs(id=i)[0].result for i in ids]
