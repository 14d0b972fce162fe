# Retries: an int, a strategy, and a custom strategy reading job.attempts.
from procrastinate import (
    App,
    BaseRetryStrategy,
    PsycopgConnector,
    RetryDecision,
    RetryStrategy,
)

app = App(connector=PsycopgConnector())
runs = {"int": [], "strategy": [], "custom": []}


@app.task(retry=2, pass_context=True)
def with_int(context):
    runs["int"].append(context.job.attempts)
    raise ValueError("again")


@app.task(
    retry=RetryStrategy(max_attempts=1, retry_exceptions={KeyError}), pass_context=True
)
def with_strategy(context):
    runs["strategy"].append(context.job.attempts)
    raise KeyError("again")


class OnceMore(BaseRetryStrategy):
    def get_retry_decision(self, *, exception, job):
        if job.attempts >= 1:  # the second attempt is the last
            return None
        return RetryDecision(retry_in={"seconds": 0}, priority=3)


@app.task(retry=OnceMore(), pass_context=True)
def with_custom(context):
    runs["custom"].append(context.job.attempts)
    raise ValueError("again")


def main():
    with app.open():
        for task in (with_int, with_strategy, with_custom):
            task.defer()
    app.run_worker(wait=False, install_signal_handlers=False)
    with app.open():
        statuses = sorted(job.status for job in app.job_manager.list_jobs())
    return runs, statuses
