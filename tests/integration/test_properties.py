"""Property-based tests (hypothesis) of what users feed the library: defer
arguments and options, schedules, cron strings, the CLI's JSON. Each input
either gets a clear error (one of the library's exceptions, a ``ValueError``
or a ``TypeError``, with a message) and writes nothing, or gives a stored
job that reads back equal.

The defer properties run on the in-memory connector and on PostgreSQL.
Examples are few (``max_examples``) so that the
suite stays fast; hypothesis keeps the failing ones in its database.
"""

from __future__ import annotations

import datetime
import math
from typing import Any

import hypothesis
import pytest
from hypothesis import HealthCheck, given
from hypothesis import strategies as st

import procrastinate_anyio as pa
from procrastinate_anyio._periodic import check_cron, next_tick
from procrastinate_anyio.cli._commands import _json_object
from procrastinate_anyio.cli._errors import CLIError

pytestmark = pytest.mark.anyio

SETTINGS = hypothesis.settings(
    max_examples=40,
    deadline=None,
    # One connector for all the examples of a test: each example checks only
    # the job it wrote, and counts the jobs before and after.
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

# Text as users send it: any code point (lone surrogates and NUL included).
ANY_TEXT = st.text(st.characters(codec=None), max_size=40)
JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats(allow_nan=True, allow_infinity=True)
    | ANY_TEXT
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(ANY_TEXT, children, max_size=4)
    ),
    max_leaves=20,
)
CLEAR_ERRORS = (pa.ProcrastinateException, ValueError, TypeError)


@pytest.fixture(params=["memory", "postgres"])
def connector(request: pytest.FixtureRequest) -> Any:
    if request.param == "memory":
        return pa.InMemoryConnector()
    # Not an async fixture: requesting one from a running test would re-enter
    # the event loop.
    return request.getfixturevalue("pg_connector")


@pytest.fixture
async def app(connector: Any) -> Any:
    app = pa.App(connector=connector)

    @app.task(name="echo")
    def echo(**kwargs: Any) -> None: ...

    async with app.open_async():
        yield app


async def job_count(app: pa.App) -> int:
    return len(await app.job_manager.list_jobs_async())


def _json_equal(a: Any, b: Any) -> bool:
    """Equal as JSON values (-0.0 == 0.0, int 1 == float 1.0 as jsonb)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(map(_json_equal, a, b))
    if isinstance(a, float) or isinstance(b, float):
        return (
            isinstance(a, (int, float))
            and isinstance(b, (int, float))
            and (math.isclose(a, b, rel_tol=1e-15, abs_tol=0.0) or a == b)
        )
    return type(a) is type(b) and a == b


async def defer_or_refuse(app: pa.App, make_deferrer: Any, **kwargs: Any) -> Any:
    """Defer; on a clear error check nothing was written. The job, or None."""
    before = await job_count(app)
    refused: Exception | None = None
    try:
        job_id = await make_deferrer().defer_async(**kwargs)
    except CLEAR_ERRORS as exc:
        refused = exc
    if refused is not None:
        assert str(refused), f"{type(refused).__name__} without a message"
        assert await job_count(app) == before, "a refused defer wrote a job"
        return None
    job = await app.job_manager.get_job_async(job_id)
    assert job is not None
    assert await job_count(app) == before + 1
    return job


@SETTINGS
@given(kwargs=st.dictionaries(ANY_TEXT, JSON_VALUES, max_size=4))
async def test_job_arguments_round_trip_or_are_refused(
    app: pa.App, kwargs: dict[str, Any]
) -> None:
    """Any JSON-like arguments (odd unicode, NUL, lone surrogates, huge
    integers, NaN) are stored and read back equal, or refused clearly."""
    job = await defer_or_refuse(app, lambda: app.configure_task("echo"), **kwargs)
    if job is not None:
        assert _json_equal(dict(job.task_kwargs), kwargs)


@SETTINGS
@given(depth=st.integers(min_value=1, max_value=3000))
async def test_deeply_nested_arguments(app: pa.App, depth: int) -> None:
    """Arguments nested very deep are stored, or refused clearly (never a
    RecursionError)."""
    value: Any = 1
    for _ in range(depth):
        value = [value]
    job = await defer_or_refuse(app, lambda: app.configure_task("echo"), x=value)
    if job is not None:
        assert job.task_kwargs == {"x": value}


@SETTINGS
@given(
    queue=ANY_TEXT,
    lock=st.none() | ANY_TEXT,
    queueing_lock=st.none() | ANY_TEXT,
    priority=st.integers(min_value=-(2**40), max_value=2**40),
)
async def test_job_options_round_trip_or_are_refused(
    app: pa.App, queue: str, lock: str | None, queueing_lock: str | None, priority: int
) -> None:
    """Queues, locks and priorities are stored as given, or refused clearly."""
    job = await defer_or_refuse(
        app,
        lambda: app.configure_task(
            "echo",
            queue=queue,
            lock=lock,
            queueing_lock=queueing_lock,
            priority=priority,
        ),
    )
    if job is not None:
        assert (job.queue, job.lock, job.priority) == (queue, lock, priority)
        assert job.queueing_lock == queueing_lock
        # Let the next example reuse the queueing lock.
        await app.job_manager.cancel_job_by_id_async(job.id, delete_job=True)


@SETTINGS
@given(task_name=ANY_TEXT)
async def test_task_names_are_stored_or_refused(app: pa.App, task_name: str) -> None:
    """Deferring by any name stores that name, or is refused clearly."""
    job = await defer_or_refuse(app, lambda: app.configure_task(task_name))
    if job is not None:
        assert job.task_name == task_name


AWARE = st.datetimes(
    min_value=datetime.datetime(1, 1, 2),
    max_value=datetime.datetime(9999, 12, 30),
    timezones=st.one_of(st.none(), st.timezones()),
)


@SETTINGS
@given(
    when=AWARE | st.just(None),
    seconds=st.none()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.integers(min_value=-(10**12), max_value=10**12),
)
async def test_schedules_are_stored_or_refused(
    app: pa.App, when: datetime.datetime | None, seconds: float | None
) -> None:
    """schedule_at (naive, aware, far away) and schedule_in (odd numbers)
    give a stored schedule or a clear error."""
    options: dict[str, Any] = {}
    if when is not None:
        options["schedule_at"] = when
    if seconds is not None:
        options["schedule_in"] = {"seconds": seconds}
    job = await defer_or_refuse(app, lambda: app.configure_task("echo", **options))
    if job is not None and when is not None and seconds is None:
        assert job.scheduled_at == when


@hypothesis.settings(max_examples=200, deadline=None)
@given(cron=st.text(st.sampled_from("0123456789*/-, LW#?abcdefjmnostuy"), max_size=30))
def test_cron_strings(cron: str) -> None:
    """A cron string is refused clearly, or its next tick is in the future."""
    refused: Exception | None = None
    try:
        check_cron(cron)
    except (ValueError, TypeError) as exc:
        refused = exc
    if refused is not None:
        assert str(refused)
        return
    now = 1_800_000_000.0
    assert next_tick(cron, now) > now


@hypothesis.settings(max_examples=200, deadline=None)
@given(text=ANY_TEXT | st.builds(str, JSON_VALUES))
def test_cli_json_arguments(text: str) -> None:
    """The CLI's JSON_ARGS is a JSON object, or a CLIError that says why."""
    refused: CLIError | None = None
    try:
        value = _json_object(text)
    except CLIError as exc:
        refused = exc
    if refused is not None:
        assert "JSON_ARGS" in str(refused)
        return
    assert isinstance(value, dict)
