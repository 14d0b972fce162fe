"""Tests of the declaration of global limits: parsing, validation at
declaration, and the limits an app's worker claims under."""

from __future__ import annotations

import pytest

from procrastinate_anyio import App, Blueprint, InMemoryConnector
from procrastinate_anyio._limits import Limit, QueueLimits, RateLimit, pick, room
from procrastinate_anyio.connectors import FetchParams
from procrastinate_anyio.connectors.postgres import _ops


class TestRateLimit:
    @pytest.mark.parametrize(
        ("text", "count", "seconds"),
        [
            pytest.param("10/s", 10, 1.0, id="second"),
            pytest.param(" 3 / m ", 3, 60.0, id="minute-spaces"),
            pytest.param("1/h", 1, 3600.0, id="hour"),
        ],
    )
    def test_parse(self, text: str, count: int, seconds: float) -> None:
        """N per second, minute or hour."""
        assert RateLimit.parse(text) == RateLimit(count, seconds)

    @pytest.mark.parametrize(
        "text",
        [
            pytest.param("5/x", id="unit"),
            pytest.param("0/s", id="zero"),
            pytest.param("-1/s", id="negative"),
            pytest.param("5", id="no-period"),
            pytest.param("1.5/s", id="fraction"),
        ],
    )
    def test_malformed(self, text: str) -> None:
        """Anything else is refused with the expected form in the message."""
        with pytest.raises(ValueError, match="'N/s', 'N/m' or 'N/h'"):
            RateLimit.parse(text)

    def test_not_a_string(self) -> None:
        with pytest.raises(TypeError, match="rate_limit"):
            RateLimit.parse(5)


class TestDeclaration:
    @pytest.mark.parametrize(
        ("options", "error"),
        [
            pytest.param({"concurrency_limit": 0}, ValueError, id="zero"),
            pytest.param({"concurrency_limit": -2}, ValueError, id="negative"),
            pytest.param({"concurrency_limit": 1.5}, TypeError, id="float"),
            pytest.param({"concurrency_limit": True}, TypeError, id="bool"),
            pytest.param({"rate_limit": "5/x"}, ValueError, id="rate-unit"),
            pytest.param({"rate_limit": "0/m"}, ValueError, id="rate-zero"),
        ],
    )
    def test_bad_limits_fail_at_declaration(
        self, options: dict[str, object], error: type[Exception]
    ) -> None:
        """A malformed limit fails when the task is declared."""
        app = App(connector=InMemoryConnector())
        with pytest.raises(error):
            app.task(name="t", **options)(lambda: None)  # type: ignore[call-overload]  # bad on purpose
        assert "t" not in app.tasks

    def test_bad_queue_limits_fail_at_construction(self) -> None:
        """Queue limits are checked when the App is made."""
        with pytest.raises(ValueError, match="rate_limit"):
            App(
                connector=InMemoryConnector(), queue_limits={"q": {"rate_limit": "1/y"}}
            )
        with pytest.raises(ValueError, match="give concurrency_limit or rate_limit"):
            App(connector=InMemoryConnector(), queue_limits={"q": {}})

    def test_the_limits_of_an_app(self) -> None:
        """Tasks' limits (with their aliases, blueprints' tasks too) and queue
        limits are what the worker claims under."""
        bp = Blueprint()
        bp.task(name="sync", concurrency_limit=1)(lambda: None)
        app = App(
            connector=InMemoryConnector(),
            queue_limits={"mail": QueueLimits(rate_limit="100/m")},
        )
        app.task(name="api", aliases=["old_api"], rate_limit="5/s")(lambda: None)
        app.task(name="free")(lambda: None)
        app.add_tasks_from(bp, namespace="lib")

        assert sorted(app.limits(), key=lambda limit: limit.key) == [
            Limit(scope="queue", names=("mail",), rate=RateLimit(100, 60.0)),
            Limit(scope="task", names=("api", "old_api"), rate=RateLimit(5, 1.0)),
            Limit(scope="task", names=("lib:sync",), concurrency=1),
        ]


def test_room_and_pick() -> None:
    """The room of each limit is its tightest part; picking keeps the order
    and skips what a full limit covers; rate starts are counted per limit."""
    slow = Limit(scope="task", names=("slow",), concurrency=2, rate=RateLimit(5, 1.0))
    free = room([slow], {"task:slow": 1}, {"task:slow": 4})
    assert free == {"task:slow": 1}

    candidates = [("slow", "q"), ("fast", "q"), ("slow", "q"), ("fast", "q")]
    picked, starts = pick(candidates, [slow], free, 3, where=lambda c: c)
    assert picked == [("slow", "q"), ("fast", "q"), ("fast", "q")]
    assert starts == ["task:slow"]


def test_the_limited_claim_is_one_statement() -> None:
    """The PostgreSQL driver claims under limits in one round trip (no
    transaction of several statements): ``pa_claim_limited`` does it all."""
    op = _ops.job_fetch_many(
        FetchParams(
            worker_id=1,
            queues=None,
            limit=100,
            limits=(Limit(scope="task", names=("t",), rate=RateLimit(5, 1.0)),),
        )
    )
    statement = next(op)
    assert statement.name == "job_fetch_limited"
    with pytest.raises(StopIteration) as stop:
        op.send([])
    assert stop.value.value == []
