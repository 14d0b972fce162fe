# Custom JSON: the connector's json_dumps and json_loads carry datetimes.
import datetime
import functools
import json

from procrastinate import App, PsycopgConnector


def encode(obj):
    if isinstance(obj, datetime.datetime):
        return {"__dt__": obj.isoformat()}
    raise TypeError(f"Cannot encode {obj!r}")


def decode(obj):
    if "__dt__" in obj:
        return datetime.datetime.fromisoformat(obj["__dt__"])
    return obj


app = App(
    connector=PsycopgConnector(
        json_dumps=functools.partial(json.dumps, default=encode),
        json_loads=functools.partial(json.loads, object_hook=decode),
    )
)
seen = []


@app.task
def remind(at):
    seen.append(type(at).__name__)
    return at


def main():
    at = datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc)
    with app.open():
        job_id = remind.defer(at=at)
        stored = app.job_manager.list_jobs(id=job_id)[0].task_kwargs["at"]
    app.run_worker(wait=False, install_signal_handlers=False)
    return seen, stored == at
