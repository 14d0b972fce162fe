# Blueprints: tasks declared in a library, added to the app with a namespace.
from procrastinate import App, Blueprint, PsycopgConnector

bp = Blueprint()


answers = []


@bp.task(name="ping")
def ping():
    answers.append("pong")


app = App(connector=PsycopgConnector())
app.add_tasks_from(bp, namespace="lib")


def main():
    with app.open():
        job_id = ping.defer()
        name = app.job_manager.list_jobs(id=job_id)[0].task_name
    app.run_worker(wait=False, install_signal_handlers=False)
    return name, answers[0]
