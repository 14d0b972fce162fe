"""URLs of the example app."""

from __future__ import annotations

from django.urls import path

from . import views

urlpatterns = [path("", views.add_note)]
