"""Sphinx configuration."""

from __future__ import annotations

import procrastinate_anyio

project = "procrastinate_anyio"
author = "procrastinate_anyio contributors"
copyright = "2026, procrastinate_anyio contributors"  # Sphinx's name
release = procrastinate_anyio.__version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build"]
myst_heading_anchors = 3
autodoc_member_order = "bysource"
autodoc_typehints = "description"
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_ivar = True
html_theme = "furo"

# Every cross-reference must resolve (CI builds with -W). The network is
# closed to the docs build, so there is no intersphinx inventory for Python,
# anyio or psycopg: their names cannot resolve and are ignored here, by name.
nitpicky = True
nitpick_ignore_regex = [
    # The standard library (no intersphinx inventory).
    ("py:.*", r"(collections\.abc|contextlib|datetime|enum|json|pathlib|typing)\..*"),
    ("py:class", r"AbstractAsyncContextManager"),  # contextlib, unqualified
    # anyio: the task_status of run_* entry points.
    ("py:class", r"(anyio\.abc\.)?TaskStatus"),
    # psycopg, whose AsyncConnection AnyioConnection extends: its exceptions
    # and the type aliases of its signatures.
    ("py:.*", r"psycopg\..*"),
    (
        "py:class",
        r"AdaptContext|AsyncCursor|AsyncRowFactory|AsyncTransaction|ConnParam"
        r"|DictRow|PQGen|Row|RV",
    ),
    # Django, for the Django integration.
    ("py:.*", r"(django\..*|ImproperlyConfigured)"),
    # OpenTelemetry's API, for contrib.opentelemetry.
    ("py:class", r"(opentelemetry\..*|TracerProvider|MeterProvider|TextMapPropagator)"),
    # Type variables of generic classes (Task[P, R]).
    ("py:.*", r"(procrastinate_anyio\._\w+\.)?[PR]"),
]
nitpick_ignore = [
    # Private names that appear in public signatures: each is a known gap of
    # the public API, listed so that a new one fails the build.
    ("py:class", "AbortSignal"),  # JobContext(abort_signal=...)
    ("py:class", "AppLike"),  # JobContext.app, Worker(app)
    ("py:class", "Clock"),  # Worker(clock=...)
    ("py:class", "JobTemplate"),  # JobDeferrer(template=...)
    ("py:class", "JobToDefer"),  # JobManager.defer_jobs, connectors' job_defer_many
    ("py:class", "JSONValue"),  # Job.result, Job.task_kwargs, JobOutcome.result
    ("py:class", "RetryValue"),  # Blueprint.task(retry=...), Task(retry=...)
    ("py:class", "SyncConnectorSlot"),  # JobManager(), SchemaManager()
    ("py:class", "Hooks"),  # JobManager(hooks=...), the app's integrations
    ("py:class", "TaskOwner"),  # Task(blueprint=...)
    ("py:class", "TaskMiddleware"),  # Blueprint.task(task_middleware=...)
    (
        "py:class",
        "procrastinate_anyio._context.StopReason",
    ),  # JobContext.abort_reason()
    ("py:class", "_json.Encoder"),  # the connectors' json_dumps
    ("py:class", "procrastinate_anyio._app.AsyncOpening"),  # App.open_async()
    # JobManager's base class (shown by :show-inheritance:).
    (
        "py:class",
        "procrastinate_anyio._job_manager_porting.ProcrastinateJobManagerMixin",
    ),
]
