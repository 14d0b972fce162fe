"""The Django app config: reads the settings and discovers tasks."""

from __future__ import annotations

from django.apps import AppConfig
from django.utils.module_loading import autodiscover_modules


class ProcrastinateAnyioConfig(AppConfig):
    """``procrastinate_anyio.contrib.django``, label ``procrastinate_anyio``."""

    name = "procrastinate_anyio.contrib.django"
    label = "procrastinate_anyio"
    verbose_name = "Task queue (procrastinate_anyio)"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Configure the app from the settings, import the tasks of every
        installed app, then call ``PROCRASTINATE_ANYIO_ON_APP_READY``.

        Raises:
            ImproperlyConfigured: a setting is wrong, or a module of
                ``PROCRASTINATE_ANYIO_IMPORT_PATHS`` does not import.
        """
        from . import app
        from ._app import configure

        self.app = app
        settings = configure(app)
        if settings.autodiscover_module_name:
            autodiscover_modules(settings.autodiscover_module_name)
        if settings.on_app_ready is not None:
            settings.on_app_ready(app)
