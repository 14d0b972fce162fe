# Locks run jobs one at a time in order; a queueing lock refuses a second
# waiting job.
from procrastinate import App, PsycopgConnector, exceptions

app = App(connector=PsycopgConnector())
order = []


@app.task
def step(n):
    order.append(n)


def main():
    with app.open():
        for n in range(3):
            step.configure(lock="account-1").defer(n=n)
        step.configure(queueing_lock="refresh").defer(n=10)
        try:
            step.configure(queueing_lock="refresh").defer(n=11)
        except exceptions.AlreadyEnqueued:
            refused = True
        else:
            refused = False
    app.run_worker(wait=False, install_signal_handlers=False)
    return [n for n in order if n < 10], refused, sorted(order)[-1]
