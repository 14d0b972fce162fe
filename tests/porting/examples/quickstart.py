# The quickstart, written for Procrastinate: a sync script defers jobs, then
# runs a one-shot worker on them.
from procrastinate import App, PsycopgConnector

app = App(connector=PsycopgConnector())
results = []


@app.task(name="sum", queue="sums")
def sum_(a, b):
    results.append(a + b)
    return a + b


def main():
    with app.open():
        for a, b in [(1, 2), (3, 4), (5, 6)]:
            sum_.defer(a=a, b=b)
    app.run_worker(queues=["sums"], wait=False, install_signal_handlers=False)
    return sorted(results)
