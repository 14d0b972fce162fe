"""Settings of the example project: a Django project with a task queue in
its PostgreSQL database. The database comes from libpq's environment
variables (``PGHOST``, ``PGUSER``...) and ``EXAMPLE_DB_NAME``."""

from __future__ import annotations

import os

SECRET_KEY = "example-only-not-a-secret"
DEBUG = True
ALLOWED_HOSTS = ["localhost", "127.0.0.1", "testserver"]
USE_TZ = True

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

# The task queue: these are the defaults, shown for the example.
PROCRASTINATE_ANYIO_DATABASE_ALIAS = "default"
PROCRASTINATE_ANYIO_WORKER_DEFAULTS = {"concurrency": 4}
