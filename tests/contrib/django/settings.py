"""Django settings of the integration's tests: the database is the test
server's, its name set per test by the ``django_db`` fixture."""

from __future__ import annotations

import json
import os

import psycopg

from tests.conftest import ADMIN_DSN

_params = psycopg.conninfo.conninfo_to_dict(ADMIN_DSN)

SECRET_KEY = "not-a-secret"  # tests only
DEBUG = False
USE_TZ = True
ALLOWED_HOSTS = ["testserver"]
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "procrastinate_anyio.contrib.django",
    "tests.contrib.django.testapp",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
ROOT_URLCONF = "tests.contrib.django.urls"
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
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ.get(
            "PA_TEST_DJANGO_DB_NAME", "set_by_the_django_db_fixture"
        ),
        "USER": _params.get("user", ""),
        "PASSWORD": _params.get("password", ""),
        "HOST": _params.get("host", ""),
        "PORT": _params.get("port", ""),
    },
    # Not PostgreSQL: the app refuses it as its database.
    "lite": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"},
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
PROCRASTINATE_ANYIO_WORKER_DEFAULTS = {"install_signal_handlers": False}
PROCRASTINATE_ANYIO_IMPORT_PATHS = ["tests.contrib.django.testapp.more_tasks"]
PROCRASTINATE_ANYIO_ON_APP_READY = "tests.contrib.django.testapp.hooks.on_app_ready"

# Tests of misconfiguration start Django with some settings changed.
globals().update(json.loads(os.environ.get("PA_TEST_DJANGO_SETTINGS", "{}")))

# Django 6's tasks framework (ignored by older Django versions).
TASKS = {
    "default": {
        "BACKEND": "procrastinate_anyio.contrib.django.TaskBackend",
        "QUEUES": ["default", "other"],
    }
}
