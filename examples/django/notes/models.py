"""The example app's models: notes, and their word counts that a task fills."""

from __future__ import annotations

from django.db import models


class Note(models.Model):
    text = models.TextField()
    words = models.IntegerField(null=True)  # filled in by the count_words task
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return str(self.text)[:40]
