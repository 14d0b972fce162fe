"""Tasks of Django's tasks framework (Django 6+), on our backend."""

from __future__ import annotations

from typing import Any

from django.tasks import TaskContext, task

from .models import Note


@task
def add_note(text: str, *, times: int = 1) -> list[int]:
    """Writes through the ORM."""
    return [Note.objects.create(text=text).id for _ in range(times)]


@task(priority=50, queue_name="other")
async def double(value: int) -> int:
    return value * 2


@task(takes_context=True)
def attempt_and_id(context: TaskContext) -> dict[str, Any]:
    return {"attempt": context.attempt, "id": context.task_result.id}


@task
def fail(message: str) -> None:
    raise ValueError(message)
