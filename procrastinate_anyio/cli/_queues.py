"""``procrastinate-anyio queue pause NAME | resume NAME | list``."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import anyio

from .._validation import check_name
from ._commands import _load_app, echo
from ._errors import CLIError

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable

logger = logging.getLogger("procrastinate_anyio.cli")


def add_queue_command(
    command: Callable[..., argparse.ArgumentParser],
) -> None:
    """The ``queue`` command and its actions."""
    queue = command("queue", cmd_queue, "pause, resume or list queues")
    actions = queue.add_subparsers(title="actions", dest="queue_action", required=True)
    pause = actions.add_parser(
        "pause",
        help="workers start no job of the queue (running ones finish); defers still work",
    )
    pause.add_argument("name", help="the queue")
    resume = actions.add_parser("resume", help="workers take the queue's jobs again")
    resume.add_argument("name", help="the queue")
    actions.add_parser("list", help="every queue: paused or not, and its job counts")


def cmd_queue(args: argparse.Namespace) -> int:
    """Pause, resume or list queues."""
    if args.queue_action in ("pause", "resume"):
        try:
            check_name("queue", args.name)
        except (TypeError, ValueError) as exc:
            raise CLIError(str(exc)) from None
    app = _load_app(args)
    manager = app.job_manager

    async def act() -> list[str]:
        async with app.open_async():
            if args.queue_action == "pause":
                paused = await manager.pause_queue_async(args.name)
                logger.info(
                    "Paused queue %s",
                    args.name,
                    extra={"action": "queue_pause", "queue": args.name},
                )
                return [
                    f"Paused queue {args.name}"
                    if paused
                    else f"Queue {args.name} was paused already"
                ]
            if args.queue_action == "resume":
                resumed = await manager.resume_queue_async(args.name)
                return [
                    f"Resumed queue {args.name}"
                    if resumed
                    else f"Queue {args.name} was not paused"
                ]
            paused_at = {
                p.name: p.paused_at for p in await manager.list_paused_queues_async()
            }
            counts = {s.name: s for s in await manager.list_queues_async()}
            lines = []
            for name in sorted(paused_at.keys() | counts.keys()):
                stats = counts.get(name)
                state = (
                    f"paused since {paused_at[name].isoformat(timespec='seconds')}"
                    if name in paused_at
                    else "active"
                )
                todo, doing = (stats.todo, stats.doing) if stats else (0, 0)
                lines.append(f"{name}: {state}, {todo} todo, {doing} doing")
            return lines or ["No queue has jobs or is paused"]

    for line in anyio.run(act, backend="asyncio"):
        echo(line)
    return 0
