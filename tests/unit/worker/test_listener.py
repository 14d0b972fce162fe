"""Tests of the worker's listener on the app's notification hub:
notifications forwarded, reconnection with backoff.

The backoff runs under Trio's MockClock; the rest on both backends.
"""

from __future__ import annotations

import functools
import itertools
from typing import Any, cast

import anyio
import pytest

from procrastinate_anyio import ConnectorException, InMemoryConnector
from procrastinate_anyio._notifications import (
    RECONNECT_BACKOFF_MAX_SECONDS,
    RECONNECT_BACKOFF_START_SECONDS,
    NotificationHub,
)
from procrastinate_anyio.connectors import AsyncConnector, Notification
from procrastinate_anyio.worker._listener import MISSED_JOBS, listen
from tests.support import HANG_GUARD_SECONDS, mock_clock

pytestmark = pytest.mark.anyio


class ScriptedConnector:
    """``listen`` follows a script, one step per call: "fail" (refused),
    "drop" (listens, then loses the connection when ``drop`` is set),
    "listen" (listens until cancelled). Records when each call began."""

    def __init__(self, *script: str) -> None:
        self.script = list(script)
        self.calls: list[float] = []
        self.drop = anyio.Event()

    async def listen(self, on_notification: Any, *, task_status: Any) -> None:
        await anyio.lowlevel.checkpoint()
        self.calls.append(anyio.current_time())
        step = self.script.pop(0) if self.script else "fail"
        if step == "fail":
            raise ConnectorException("connection refused")
        task_status.started()
        if step == "drop":
            await self.drop.wait()
            raise ConnectorException("connection lost")
        await anyio.sleep_forever()


def heard() -> tuple[Any, Any]:
    return anyio.create_memory_object_stream[Notification](100)


async def on_listening(receive: Any, callback: Any) -> None:
    """Call ``callback`` each time the listener says it (re)started listening."""
    async with receive:
        async for notification in receive:
            if notification == MISSED_JOBS:
                callback()


async def test_forwards_notifications():
    """Once started, the listener says jobs may have been missed, then
    forwards every notification; the stream closes when it stops."""
    connector = InMemoryConnector()
    send, receive = heard()
    hub = NotificationHub(connector)
    listener = functools.partial(listen, hub, send)
    with receive, anyio.fail_after(HANG_GUARD_SECONDS):
        async with anyio.create_task_group() as tg:
            await tg.start(listener)
            assert hub.listening
            connector.store.notify(Notification(kind="abort", job_id=3))
            tg.cancel_scope.cancel()
        received = [notification async for notification in receive]
    assert received == [MISSED_JOBS, Notification(kind="abort", job_id=3)]


async def test_full_stream_drops_notifications():
    """A worker that does not keep up loses notifications, not the listener
    (polling delivers the same news later)."""
    connector = InMemoryConnector()
    send, receive = anyio.create_memory_object_stream[Notification](1)
    hub = NotificationHub(connector)
    listener = functools.partial(listen, hub, send)
    with receive, anyio.fail_after(HANG_GUARD_SECONDS):
        async with anyio.create_task_group() as tg:
            await tg.start(listener)
            connector.store.notify(Notification(kind="abort", job_id=3))
            tg.cancel_scope.cancel()
        received = [notification async for notification in receive]
    assert received == [MISSED_JOBS]


async def test_starts_even_when_the_first_attempt_fails():
    """run() reports started after a failed first attempt (polling covers it)."""
    connector = ScriptedConnector("fail", "listen")
    send, receive = heard()
    hub = NotificationHub(cast("AsyncConnector", connector))
    listener = functools.partial(listen, hub, send)
    with receive, anyio.fail_after(HANG_GUARD_SECONDS):
        async with anyio.create_task_group() as tg:
            await tg.start(listener)
            assert not hub.listening
            tg.cancel_scope.cancel()


@mock_clock()
async def test_reconnects_with_exponential_backoff():
    """Failed attempts are retried after 0.1, 0.2, 0.4... s, capped."""
    connector = ScriptedConnector(*["fail"] * 10, "listen")
    listening = anyio.Event()
    send, receive = heard()
    hub = NotificationHub(cast("AsyncConnector", connector))
    listener = functools.partial(listen, hub, send)
    async with anyio.create_task_group() as tg:
        tg.start_soon(on_listening, receive, listening.set)
        tg.start_soon(listener)
        await listening.wait()
        tg.cancel_scope.cancel()
    gaps = [b - a for a, b in itertools.pairwise(connector.calls)]
    expected = [RECONNECT_BACKOFF_START_SECONDS * 2**i for i in range(10)]
    expected = [min(gap, RECONNECT_BACKOFF_MAX_SECONDS) for gap in expected]
    assert gaps == pytest.approx(expected)
    assert expected[-1] == RECONNECT_BACKOFF_MAX_SECONDS
    assert hub.reconnections == 10


@mock_clock()
async def test_backoff_resets_after_listening():
    """A connection lost after listening is retried with the initial backoff."""
    connector = ScriptedConnector("fail", "fail", "drop", "fail", "listen")
    listened = 0
    relistened = anyio.Event()

    def listening() -> None:
        nonlocal listened
        listened += 1
        if listened == 1:
            connector.drop.set()
        else:
            relistened.set()

    send, receive = heard()
    hub = NotificationHub(cast("AsyncConnector", connector))
    listener = functools.partial(listen, hub, send)
    async with anyio.create_task_group() as tg:
        tg.start_soon(on_listening, receive, listening)
        tg.start_soon(listener)
        await relistened.wait()
        assert hub.listening
        tg.cancel_scope.cancel()
    gaps = [b - a for a, b in itertools.pairwise(connector.calls)]
    assert gaps == pytest.approx([0.1, 0.2, 0.1, 0.2])


async def test_unexpected_errors_propagate():
    """Only ConnectorException means "reconnect"; anything else is a bug."""

    class Broken:
        async def listen(self, on_notification: Any, *, task_status: Any) -> None:
            raise RuntimeError("bug")

    send, receive = heard()
    hub = NotificationHub(cast("AsyncConnector", Broken()))
    listener = functools.partial(listen, hub, send)
    with (
        receive,
        anyio.fail_after(HANG_GUARD_SECONDS),
        pytest.raises(RuntimeError, match="bug"),
    ):
        await listener()


async def test_notification_after_the_reader_left_is_dropped() -> None:
    """A notification that arrives once nobody reads the stream (the worker
    stopping) is dropped; the sender (here the in-memory store, inside a
    write) does not get an error."""
    connector = InMemoryConnector()
    hub = NotificationHub(cast("AsyncConnector", connector))
    send, receive = heard()
    with anyio.fail_after(HANG_GUARD_SECONDS):
        async with anyio.create_task_group() as tg:
            await tg.start(listen, hub, send)
            receive.close()
            connector.store.notify(Notification(kind="defer"))
            tg.cancel_scope.cancel()
