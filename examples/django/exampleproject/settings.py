"""Settings of the example project: a Django project with a task queue in
its PostgreSQL database. The database comes from libpq's environment
variables (``PGHOST``, ``PGUSER``...) and ``EXAMPLE_DB_NAME``."""

from __future__ import annotations

import os

SECRET_KEY = "example-only-not-a-secret"
DEBUG = True
ALLOWED_HOSTS = ["localhost", "127.0.0.1", "testserver"]
USE_TZ = True

# docs: installed-apps
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "procrastinate_anyio.contrib.django",
    "notes",
]
# docs: end
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
ROOT_URLCONF = "exampleproject.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
STATIC_URL = "static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ.get("EXAMPLE_DB_NAME", "procrastinate_anyio_example"),
        "HOST": os.environ.get("PGHOST", "127.0.0.1"),
        "USER": os.environ.get("PGUSER", "postgres"),
        "PASSWORD": os.environ.get("PGPASSWORD", ""),
        "PORT": os.environ.get("PGPORT", "5432"),
    }
}

# docs: settings
# The task queue's settings (all optional).
PROCRASTINATE_ANYIO_DATABASE_ALIAS = "default"  # the database that holds the jobs
PROCRASTINATE_ANYIO_AUTODISCOVER_MODULE_NAME = "tasks"  # each app's tasks.py
PROCRASTINATE_ANYIO_IMPORT_PATHS: list[str] = []  # more modules with tasks
PROCRASTINATE_ANYIO_WORKER_DEFAULTS = {"concurrency": 4}
PROCRASTINATE_ANYIO_PERIODIC_DEFAULTS: dict[str, object] = {}
PROCRASTINATE_ANYIO_ON_APP_READY = None  # or "myproject.hooks.on_app_ready"
# docs: end

# docs: tasks-backend
# Django 6's tasks framework (django.tasks); older versions ignore it.
TASKS = {"default": {"BACKEND": "procrastinate_anyio.contrib.django.TaskBackend"}}
# docs: end
