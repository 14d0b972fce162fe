"""Tests of the notification hub: one LISTEN for all subscribers, hosted by
whoever needs it, handed over when the host leaves; subscriptions leave no
trace; waiters share it."""

from __future__ import annotations

from typing import Any

import anyio
import anyio.abc
import pytest

from procrastinate_anyio import App, InMemoryConnector
from procrastinate_anyio._notifications import HubStatistics, NotificationHub
from procrastinate_anyio.connectors import Notification
from tests.support import HANG_GUARD_SECONDS

pytestmark = pytest.mark.anyio

ABORT = Notification(kind="abort", job_id=3)


class CountingConnector(InMemoryConnector):
    """An in-memory connector that counts the LISTENs open at once."""

    def __init__(self) -> None:
        super().__init__()
        self.open_listens = 0
        self.most_listens = 0
        self.listens = 0

    async def listen(
        self,
        on_notification: Any,
        *,
        task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        self.listens += 1
        self.open_listens += 1
        self.most_listens = max(self.most_listens, self.open_listens)
        try:
            await super().listen(on_notification, task_status=task_status)
        finally:
            self.open_listens -= 1


async def test_subscribers_share_one_listen() -> None:
    """Two hosts, two subscribers: one LISTEN; both hear each notification."""
    connector = CountingConnector()
    hub = NotificationHub(connector)
    first: list[Notification] = []
    second: list[Notification] = []
    with (
        anyio.fail_after(HANG_GUARD_SECONDS),
        hub.subscribe(first.append),
        hub.subscribe(second.append),
    ):
        async with anyio.create_task_group() as tg:
            await tg.start(hub.run)
            await tg.start(hub.run)
            connector.store.notify(ABORT)
            assert hub.statistics() == HubStatistics(
                subscribers=2,
                hosts_waiting=1,
                hosted=True,
                listening=True,
                reconnections=0,
            )
            tg.cancel_scope.cancel()
    assert (first, second, connector.most_listens) == ([ABORT], [ABORT], 1)


async def test_the_next_host_takes_over() -> None:
    """When the host leaves, a waiting host listens in its place, and the
    subscribers are told listening restarted (they look for what they missed)."""
    connector = CountingConnector()
    hub = NotificationHub(connector)
    heard: list[Notification] = []
    restarts = 0

    def restarted() -> None:
        nonlocal restarts
        restarts += 1

    with (
        anyio.fail_after(HANG_GUARD_SECONDS),
        hub.subscribe(heard.append, on_listening=restarted),
    ):
        async with anyio.create_task_group() as outer:
            first = anyio.CancelScope()

            async def host_until_cancelled(
                *, task_status: anyio.abc.TaskStatus[None]
            ) -> None:
                with first:
                    await hub.run(task_status=task_status)

            await outer.start(host_until_cancelled)
            await outer.start(hub.run)
            first.cancel()
            await hub.wait_listening()
            await anyio.wait_all_tasks_blocked()
            assert hub.statistics().hosts_waiting == 0
            connector.store.notify(ABORT)
            outer.cancel_scope.cancel()
    assert (heard, restarts, connector.listens, connector.most_listens) == (
        [ABORT],
        2,
        2,
        1,
    )


async def test_leaving_removes_the_subscription() -> None:
    """A subscriber cancelled mid-wait leaves no registration; with no host
    left, the hub is idle."""
    hub = NotificationHub(InMemoryConnector())
    with anyio.fail_after(HANG_GUARD_SECONDS):
        async with anyio.create_task_group() as tg:

            async def subscriber(*, task_status: anyio.abc.TaskStatus[None]) -> None:
                with hub.subscribe(lambda notification: None):
                    await hub.run(task_status=task_status)

            await tg.start(subscriber)
            assert hub.statistics().subscribers == 1
            tg.cancel_scope.cancel()
    assert hub.statistics() == HubStatistics(
        subscribers=0, hosts_waiting=0, hosted=False, listening=False, reconnections=0
    )


async def test_concurrent_waiters_share_one_listen() -> None:
    """Fifty waiters of one app and its worker open one LISTEN, get their
    results, and leave no subscriber behind."""
    connector = CountingConnector()
    app = App(connector=connector)

    @app.task(name="double")
    async def double(x: int) -> int:
        return 2 * x

    ids = await double.batch_defer_async(*({"x": i} for i in range(50)))
    results: dict[int, Any] = {}

    async def wait(job_id: int) -> None:
        results[job_id] = (await app.job_manager.wait_for_job_async(job_id)).result

    with anyio.fail_after(HANG_GUARD_SECONDS):
        async with anyio.create_task_group() as tg:
            for job_id in ids:
                tg.start_soon(wait, job_id)
            await anyio.wait_all_tasks_blocked()
            await app.run_worker(
                wait=False, concurrency=10, install_signal_handlers=False
            )

    assert results == {job_id: 2 * i for i, job_id in enumerate(ids)}
    assert connector.most_listens == 1
    assert app.job_manager.notifications.statistics().subscribers == 0
