# Queueing locks: one waiting job per lock; once it runs, the lock is free
# again; AlreadyEnqueued carries the refusal.
from procrastinate import App, PsycopgConnector, exceptions

app = App(connector=PsycopgConnector())
refreshed = []


@app.task(queueing_lock="refresh-cache")
def refresh(version):
    refreshed.append(version)


def try_defer(version):
    try:
        refresh.defer(version=version)
    except exceptions.AlreadyEnqueued:
        return False
    return True


def main():
    with app.open():
        accepted = [try_defer(1), try_defer(2)]
        other = refresh.configure(queueing_lock="other-cache").defer(version=3)
    app.run_worker(wait=False, install_signal_handlers=False)
    with app.open():
        accepted.append(try_defer(4))
    return accepted, sorted(refreshed), other > 0
