"""Views that defer jobs."""

from __future__ import annotations

from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse

from .tasks import write_note


def defer_view(request: HttpRequest) -> HttpResponse:
    """Defers in the view's transaction; ``?fail=1`` rolls it back."""
    try:
        with transaction.atomic():
            job_id = write_note.defer(text=request.GET.get("text", "hello"))
            if request.GET.get("fail"):
                raise RuntimeError("rolled back")
    except RuntimeError:
        return JsonResponse({"job_id": None})
    return JsonResponse({"job_id": job_id})


async def defer_async_view(request: HttpRequest) -> HttpResponse:
    job_id = await write_note.defer_async(text=request.GET.get("text", "hello"))
    return JsonResponse({"job_id": job_id})
