"""The example app's view: saves a note and defers its word count in the
same transaction."""

from __future__ import annotations

from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_POST

from .models import Note
from .tasks import count_words


@require_POST
def add_note(request: HttpRequest) -> HttpResponse:
    with transaction.atomic():
        note = Note.objects.create(text=request.POST["text"])
        # Written in the view's transaction: if anything below fails, neither
        # the note nor the job exists.
        job_id = count_words.defer(note_id=note.id)
    return JsonResponse({"note_id": note.id, "job_id": job_id}, status=201)
