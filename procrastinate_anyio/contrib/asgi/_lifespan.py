"""A worker as one more child of an application: for a block, or a lifespan.

The worker runs in a task group that spans the block (or the ASGI lifespan's
``yield``). Leaving the block asks the worker to stop, and the task group
waits for its graceful shutdown (running jobs get
``shutdown_graceful_timeout``, outcomes are written, the worker unregisters),
so the block does not end while the worker still holds jobs.

A worker that dies while the block runs cancels the block and the helper
raises :class:`WorkerFailed`: the caller cannot go on believing it has a
worker. A web server keeps serving after its lifespan failed (uvicorn does),
so :func:`lifespan` also asks the server to stop by sending the process a
SIGTERM, the signal every ASGI server handles as "shut down gracefully";
a process supervisor then restarts it, with a worker.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from typing import TYPE_CHECKING, Any

import anyio
from anyio.abc import TaskStatus

from procrastinate_anyio import App, ProcrastinateException, Worker

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable
    from contextlib import AbstractAsyncContextManager

logger = logging.getLogger("procrastinate_anyio.asgi")


class WorkerFailed(ProcrastinateException):
    """The worker of :func:`running_worker` stopped on error while the block
    ran; the block was cancelled. The worker's error is the ``__cause__``."""


class _TrackedStatus(TaskStatus[Worker]):
    """Forwards ``started()`` and remembers whether it was called, to tell a
    worker that could not start from one that failed later."""

    def __init__(self, inner: TaskStatus[Worker]) -> None:
        self._inner = inner
        self.called = False

    def started(self, value: Worker | None = None) -> None:
        if value is None:
            raise TypeError("run_worker reports its Worker")
        self.called = True
        self._inner.started(value)


@contextlib.asynccontextmanager
async def running_worker(app: App, **options: Any) -> AsyncIterator[Worker]:
    """Run a worker of ``app`` for the duration of the block.

    Opens ``app`` for the block if it is not open, so the block can defer
    jobs. The block starts once the worker is registered and listening, and
    gets the :class:`~procrastinate_anyio.Worker` (for ``statistics()`` or an
    early ``stop()``). Leaving the block stops the worker gracefully and waits
    for it: running jobs get ``shutdown_graceful_timeout`` to finish, then are
    cancelled; their outcomes are written, the worker unregisters.

    Args:
        app: the app whose jobs the worker runs.
        **options: :class:`~procrastinate_anyio.WorkerOptions` fields, over
            the app's ``worker_defaults``. ``install_signal_handlers``
            defaults to False here: signals belong to the program (or the web
            server) around the block.

    Raises:
        WorkerFailed: the worker stopped on error while the block ran (the
            block is cancelled first).
        ConnectorException: the worker could not start (database down).

    An exception of the block stops the worker gracefully too, then goes on,
    as is (not wrapped in an exception group).

    Cancellation: cancelling the block's scope stops the worker gracefully,
    as leaving it does; the cancellation then propagates.
    """
    options.setdefault("install_signal_handlers", False)
    failure: Exception | None = None
    body_error: BaseException | None = None
    running = True
    async with contextlib.AsyncExitStack() as stack:
        if not app.connector.is_open:
            await stack.enter_async_context(app.open_async())
        async with anyio.create_task_group() as tg:

            async def run(*, task_status: TaskStatus[Worker]) -> None:
                nonlocal failure, running
                status = _TrackedStatus(task_status)
                try:
                    await app.run_worker(task_status=status, **options)
                except Exception as exc:
                    if not status.called:
                        raise  # from tg.start(): the block never starts
                    failure = exc
                    tg.cancel_scope.cancel()
                finally:
                    running = False

            # Errors of the start and of the block are raised as is once the
            # task group has ended, not wrapped in its exception group:
            # ``except ValueError:`` around the block must work.
            try:
                worker: Worker = await tg.start(run)
            except Exception as exc:
                body_error = exc  # the block never starts
            else:
                try:
                    yield worker
                except (anyio.get_cancelled_exc_class(), GeneratorExit):
                    raise  # the task group's business
                except BaseException as exc:
                    body_error = exc
                finally:
                    if running:
                        worker.stop()
    if failure is not None:
        logger.error(
            "The worker stopped on error: %r",
            failure,
            extra={"action": "running_worker_failed", "worker": worker.options.name},
        )
        raise WorkerFailed("the worker stopped on error") from failure
    if body_error is not None:
        raise body_error


def lifespan(
    app: App, *, stop_server_on_error: bool = True, **options: Any
) -> Callable[[Any], AbstractAsyncContextManager[None]]:
    """An ASGI lifespan that runs a worker of ``app`` while the application
    serves: ``Starlette(..., lifespan=lifespan(app, concurrency=20))``, the
    same with FastAPI.

    The application starts serving once the worker is registered and
    listening; at shutdown the worker stops gracefully (see
    :func:`running_worker`). Keep ``shutdown_graceful_timeout`` below the
    server's own shutdown timeout, if it has one.

    Args:
        app: the app whose jobs the worker runs; opened for the lifespan if
            it is not open, so views can defer jobs.
        stop_server_on_error: if the worker fails while the application
            serves, send SIGTERM to this process so that the server shuts
            down instead of serving without a worker (the lifespan fails with
            :class:`WorkerFailed` either way).
        **options: :class:`~procrastinate_anyio.WorkerOptions` fields, over
            the app's ``worker_defaults``; checked now, so a wrong option
            fails at import, not at the first start.

    Returns:
        A lifespan function, which takes the ASGI application (unused) and
        returns an async context manager.

    Raises:
        TypeError: an unknown option.
        ValueError: an invalid option value.
    """
    Worker(app, **{**app.worker_defaults, **options})  # checks; no I/O

    @contextlib.asynccontextmanager
    async def worker_lifespan(asgi_app: Any = None) -> AsyncIterator[None]:
        try:
            async with running_worker(app, **options):
                yield
        except WorkerFailed:
            if stop_server_on_error:
                logger.critical(
                    "The worker failed: stopping the server (SIGTERM)",
                    extra={"action": "lifespan_stop_server"},
                )
                os.kill(os.getpid(), signal.SIGTERM)
            raise

    return worker_lifespan
