"""Tasks of the test app, found by autodiscovery."""

from __future__ import annotations

import anyio
from django.db import connection

from procrastinate_anyio.contrib.django import app

from .models import Note


@app.task(queue="notes")
def write_note(text: str) -> int:
    """Writes through the ORM from a worker thread."""
    return int(Note.objects.create(text=text).id)


@app.task
def connection_id() -> int:
    """The id of this thread's Django connection object's database session."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    return int(pid)


@app.task
async def write_note_async(text: str) -> int:
    """Writes through the async ORM (asyncio only)."""
    note = await Note.objects.acreate(text=text)
    return int(note.id)


@app.task
async def add(a: int, b: int) -> int:
    return a + b


@app.task
def fail(message: str) -> None:
    """Fails, for the admin's failed jobs."""
    raise ValueError(message)


STARTED: list[anyio.Event] = []  # set by the test that defers block_until_aborted


@app.task
async def block_until_aborted() -> None:
    """Runs until aborted, after telling the test it started."""
    for event in STARTED:
        event.set()
    await anyio.sleep_forever()
