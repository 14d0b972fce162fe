"""A task of Django's tasks framework (Django 6+), run by the same workers."""

from __future__ import annotations

from django.tasks import task

from .models import Note


@task
def shout(note_id: int) -> str:
    """Upper-cases a note, through the ORM."""
    note = Note.objects.get(id=note_id)
    note.text = note.text.upper()
    note.save(update_fields=["text"])
    return str(note.text)
