# Priorities: higher first.
from procrastinate import App, PsycopgConnector

app = App(connector=PsycopgConnector())
order = []


@app.task
def job(name):
    order.append(name)


def main():
    with app.open():
        job.configure(priority=-1).defer(name="low")
        job.defer(name="normal")
        job.configure(priority=10).defer(name="high")
    app.run_worker(wait=False, install_signal_handlers=False)
    return order
