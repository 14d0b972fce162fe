"""URLs of the integration's tests: the admin and the test app's views."""

from __future__ import annotations

from django.contrib import admin
from django.urls import path

from .testapp import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("defer/", views.defer_view),
    path("defer-async/", views.defer_async_view),
]
