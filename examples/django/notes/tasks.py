"""The example app's tasks: found because the app is installed and the
module is called ``tasks``."""

from __future__ import annotations

import datetime

from django.utils import timezone

from procrastinate_anyio.contrib.django import app

from .models import Note


@app.task(queue="notes")
def count_words(note_id: int) -> int:
    """Writes through the ORM: counts the words of a note."""
    note = Note.objects.get(id=note_id)
    note.words = len(note.text.split())
    note.save(update_fields=["words"])
    return int(note.words)


@app.periodic(cron="0 3 * * *")
@app.task(queue="notes")
def delete_old_notes(timestamp: int) -> int:
    """Every night at 3: delete the notes older than 30 days."""
    tick = datetime.datetime.fromtimestamp(timestamp, tz=datetime.timezone.utc)
    cutoff = min(tick, timezone.now()) - datetime.timedelta(days=30)
    deleted, _ = Note.objects.filter(created_at__lt=cutoff).delete()
    return int(deleted)
