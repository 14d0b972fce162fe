"""One LISTEN connection per app, shared by everyone who listens: the worker
and every ``wait_for_job`` waiter.

PostgreSQL notifications need a connection of their own (a query on a
connection inside ``notifies()`` waits for the iteration to end), and a
server allows ~100 connections: a LISTEN per waiter cannot serve 200
concurrent requests. So listening is a hub: subscribers register callbacks
(:meth:`NotificationHub.subscribe`, a plain context manager, so leaving it,
even cancelled, leaves no registration behind), and one task, the host, runs
the LISTEN connection (:meth:`NotificationHub.run`) and calls them.

Who hosts? Whoever needs the hub runs :meth:`~NotificationHub.run` in its own
task group: the worker as a service, each waiter for the length of its wait.
Only the first one listens; the others wait, and one of them takes over when
the host leaves (its task ends or is cancelled), so N waiters cost one
connection, and the listener lives exactly as long as somebody needs it, in
a task of somebody's structured tree. Each time listening (re)starts, the
subscribers' ``on_listening`` is called: notifications sent in the gap were
missed, so they look again (the worker fetches, a waiter reads its job).

The connection is lost and re-made with backoff; polling is what keeps every
subscriber correct meanwhile.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Final

import anyio
import attrs
from anyio.abc import TaskStatus

from ._backoff import Backoff
from ._exceptions import ConnectorException

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from .connectors._protocols import AsyncConnector
    from .connectors._types import Notification

logger = logging.getLogger("procrastinate_anyio.listener")

RECONNECT_BACKOFF_START_SECONDS: Final = 0.1
RECONNECT_BACKOFF_MAX_SECONDS: Final = 10.0


@attrs.frozen(eq=False)
class _Subscriber:
    on_notification: Callable[[Notification], object]
    on_listening: Callable[[], object] | None


@attrs.frozen(kw_only=True)
class HubStatistics:
    """A snapshot of a :class:`NotificationHub`."""

    subscribers: int
    hosts_waiting: int
    hosted: bool
    listening: bool
    reconnections: int


class _OnStarted(TaskStatus[None]):
    """A task status that calls back, to learn when the connector listens
    without wrapping it in a task group (which would turn its errors into
    exception groups)."""

    def __init__(self, callback: Callable[[], None]) -> None:
        self._callback = callback

    def started(self, value: Any = None) -> None:
        self._callback()


class NotificationHub:
    """Shares one LISTEN of ``connector`` between subscribers.

    Args:
        connector: the connector to listen on.
    """

    def __init__(self, connector: AsyncConnector) -> None:
        self._connector = connector
        self._subscribers: set[_Subscriber] = set()
        self._hosted = False
        self._attempted = False
        self._hosts_waiting = 0
        self._changed = anyio.Event()
        self.listening = False
        self.reconnections = 0

    def __repr__(self) -> str:
        return f"NotificationHub({self.statistics()})"

    def statistics(self) -> HubStatistics:
        return HubStatistics(
            subscribers=len(self._subscribers),
            hosts_waiting=self._hosts_waiting,
            hosted=self._hosted,
            listening=self.listening,
            reconnections=self.reconnections,
        )

    @contextmanager
    def subscribe(
        self,
        on_notification: Callable[[Notification], object],
        *,
        on_listening: Callable[[], object] | None = None,
    ) -> Iterator[None]:
        """Call ``on_notification`` (in the host's task: it must not block)
        for each notification heard while the block runs, and
        ``on_listening`` each time listening (re)starts. Nothing listens
        unless somebody runs :meth:`run`."""
        subscriber = _Subscriber(on_notification, on_listening)
        self._subscribers.add(subscriber)
        try:
            yield
        finally:
            self._subscribers.discard(subscriber)

    async def run(
        self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Host the LISTEN until cancelled; while another task hosts it, wait
        and take over when that one leaves.

        Signals ``task_status.started()`` once the hub has tried to listen
        (listening or not: polling covers the gap), so that a notification
        sent after that is heard when listening works.

        Raises:
            Exception: what the connector raises that is not a
                ConnectorException (a bug: not retried).
        """
        started = False

        def start() -> None:
            nonlocal started
            if not started:
                started = True
                task_status.started()

        while self._hosted:
            if self._attempted:
                start()
            self._hosts_waiting += 1
            try:
                await self._wait_changed()
            finally:
                self._hosts_waiting -= 1
        self._hosted = True
        self._signal_changed()
        try:
            await self._host(start)
        finally:
            self._hosted = self.listening = self._attempted = False
            self._signal_changed()

    async def _host(self, start: Callable[[], None]) -> None:
        backoff = Backoff(
            RECONNECT_BACKOFF_START_SECONDS, RECONNECT_BACKOFF_MAX_SECONDS
        )

        def listening() -> None:
            backoff.reset()
            self.listening = self._attempted = True
            logger.info(
                "Listening for notifications", extra={"action": "listener_listening"}
            )
            for subscriber in list(self._subscribers):
                if subscriber.on_listening is not None:
                    subscriber.on_listening()
            self._signal_changed()
            start()

        while True:
            try:
                await self._connector.listen(
                    self._dispatch, task_status=_OnStarted(listening)
                )
            except ConnectorException as exc:
                logger.warning(
                    "Listener connection lost, reconnecting in %.1f s: %s",
                    backoff.delay,
                    exc,
                    extra={"action": "listener_reconnect", "backoff": backoff.delay},
                )
            self.listening = False
            self._attempted = True
            self._signal_changed()
            start()
            self.reconnections += 1
            await backoff.sleep()

    def _dispatch(self, notification: Notification) -> None:
        for subscriber in list(self._subscribers):
            subscriber.on_notification(notification)

    async def wait_listening(self) -> None:
        """Wait until the hub listens (somebody must be running :meth:`run`)."""
        while not self.listening:
            await self._wait_changed()

    async def _wait_changed(self) -> None:
        await self._changed.wait()

    def _signal_changed(self) -> None:
        changed, self._changed = self._changed, anyio.Event()
        changed.set()
