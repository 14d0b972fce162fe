"""Sync tasks in threads: one thread per slot, kept while the worker runs.

``anyio.to_thread.run_sync`` costs a thread-pool dispatch and a wake-up of the
event loop per call: about 80 µs of CPU per call on asyncio and 90-100 µs on
Trio on the reference machine, more than the rest of a job. A slot runs one
job at a time, so it keeps a thread of its own (started at its first sync
job): the slot hands the thread its call through a queue, and the results
come back to the event loop in batches: a thread that ends a call while a
hand-back is already on its way to the loop only adds its result to it. Same
calls, about 20 µs each, and as cheap on Trio as on asyncio.

What does not change: a call runs in a copy of the slot task's context
variables; a thread cannot be cancelled, so the slot waits for its call even
when the job is cancelled (the task sees ``context.should_abort()``); the
thread is an AnyIO worker thread for ``anyio.from_thread`` calls made by the
task; the number of threads is bounded by the concurrency.
"""

from __future__ import annotations

import collections
import contextlib
import contextvars
import functools
import queue
import threading
from typing import TYPE_CHECKING, Any, Final, TypeVar

import anyio
import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread
from anyio._core import _eventloop

from ._backend import event_factory

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from ._backend import LoopEvent

# How anyio and Trio mark their own worker threads, so that a task's
# anyio.from_thread (or trio.from_thread) call needs no token. Private: when
# they are not there, the slots use anyio.to_thread.run_sync (a test fails).
_claim_worker_thread: Final[Callable[[Any, Any], Any] | None] = getattr(
    _eventloop, "claim_worker_thread", None
)
try:
    import trio._threads as _trio_threads
except ImportError:  # pragma: no cover - no Trio
    _trio_threads = None  # type: ignore[assignment]
_TRIO_THREAD_DATA: Final[Any] = getattr(_trio_threads, "PARENT_TASK_DATA", None)
_CAN_MARK_THREADS: Final = _claim_worker_thread is not None


@contextlib.contextmanager
def _worker_thread(token: anyio.lowlevel.EventLoopToken) -> Iterator[None]:
    """Mark this thread as the event loop's worker thread, as
    ``anyio.to_thread`` does (and ``trio.to_thread`` on Trio: its calls back
    to Trio then run in a system task, as with ``abandon_on_cancel``)."""
    assert _claim_worker_thread is not None
    trio_data = (
        _TRIO_THREAD_DATA if token.backend_class.__name__ == "TrioBackend" else None
    )
    if trio_data is not None:
        trio_data.token = token.native_token
        trio_data.abandon_on_cancel = True
    try:
        with _claim_worker_thread(token.backend_class, token.native_token):
            yield
    finally:
        if trio_data is not None:
            del trio_data.token
            del trio_data.abandon_on_cancel


T = TypeVar("T")

_STOP: Final = object()


class _Call:
    """One call handed to a thread, and how it ended."""

    __slots__ = ("context", "done", "error", "func", "result")

    def __init__(self, func: Callable[[], Any], done: LoopEvent) -> None:
        self.func = func
        self.context = contextvars.copy_context()
        self.done = done
        self.result: Any = None
        self.error: BaseException | None = None


class SyncThreads:
    """The sync-task threads of one worker's slots (see the module)."""

    def __init__(self) -> None:
        self._token: anyio.lowlevel.EventLoopToken | None = None
        self._event: Callable[[], LoopEvent] = anyio.Event
        self._lock = threading.Lock()
        self._ended: collections.deque[_Call] = collections.deque()
        self._hand_back_scheduled = False
        self._wake_loop: Callable[[], object] | None = None  # set by _start

    def slot_thread(self) -> SlotThread:
        """The thread of one slot: one call at a time."""
        return SlotThread(self)

    def _start(self) -> None:
        if self._token is None:
            token = self._token = anyio.lowlevel.current_token()
            self._event = event_factory()
            # Without waiting for the loop where the backend can (anyio 4.10+).
            soon = getattr(token.backend_class, "run_sync_soon", None)
            self._wake_loop = (
                functools.partial(soon, self._hand_back, (), token.native_token)
                if soon is not None
                else functools.partial(  # pragma: no cover - older anyio
                    anyio.from_thread.run_sync, self._hand_back, token=token
                )
            )

    def _ended_in_thread(self, call: _Call) -> None:
        """In the thread: report the call's end; the first of a batch wakes
        the loop."""
        with self._lock:
            self._ended.append(call)
            if self._hand_back_scheduled:
                return
            self._hand_back_scheduled = True
        assert self._wake_loop is not None  # a call ends after _start
        with contextlib.suppress(anyio.RunFinishedError):  # the loop ended
            self._wake_loop()

    def _hand_back(self) -> None:
        """In the loop: wake the slots whose calls ended."""
        with self._lock:
            ended = list(self._ended)
            self._ended.clear()
            self._hand_back_scheduled = False
        for call in ended:
            call.done.set()


class SlotThread:
    """A slot's thread, started at its first call, stopped by :meth:`close`."""

    def __init__(self, threads: SyncThreads) -> None:
        self._threads = threads
        self._calls: queue.SimpleQueue[_Call | object] | None = None

    async def run_sync(self, func: Callable[[], T]) -> T:
        """Run ``func`` in the slot's thread and wait for it, even cancelled
        (like ``anyio.to_thread.run_sync``, which does not abandon it)."""
        if not _CAN_MARK_THREADS:  # pragma: no cover - other versions
            return await anyio.to_thread.run_sync(func)
        threads = self._threads
        if self._calls is None:
            threads._start()
            self._calls = queue.SimpleQueue()
            threading.Thread(
                target=self._main,
                args=(self._calls, threads._token),
                name="procrastinate_anyio sync slot",
                daemon=True,
            ).start()
        call = _Call(func, threads._event())
        self._calls.put(call)
        with anyio.CancelScope(shield=True):
            await call.done.wait()
        if call.error is not None:
            error, call.error = call.error, None  # no cycle through the frame
            raise error
        return call.result  # type: ignore[no-any-return]

    def close(self) -> None:
        """Let the thread end (it is idle: the slot waits for its calls)."""
        if self._calls is not None:
            self._calls.put(_STOP)
            self._calls = None

    def _main(
        self,
        calls: queue.SimpleQueue[_Call | object],
        token: anyio.lowlevel.EventLoopToken | None,
    ) -> None:
        assert token is not None
        with _worker_thread(token):
            while True:
                call = calls.get()
                if not isinstance(call, _Call):
                    return
                try:
                    call.result = call.context.run(call.func)
                except BaseException as exc:  # re-raised in the slot's task
                    call.error = exc
                self._threads._ended_in_thread(call)
