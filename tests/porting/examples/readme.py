# The README's first example: a module-level import, a connector with
# connection parameters, a task in a queue, a defer, a one-shot worker.
import procrastinate

app = procrastinate.App(
    connector=procrastinate.PsycopgConnector(
        kwargs={"application_name": "readme-example"}
    )
)
totals = []


@app.task(queue="sums")
def sum(a, b):
    totals.append(a + b)


def main():
    with app.open():
        sum.defer(a=3, b=5)
    app.run_worker(queues=["sums"], wait=False, install_signal_handlers=False)
    return totals
