"""The ``PROCRASTINATE_ANYIO_*`` Django settings, with their defaults, read
and checked in one place so that a misconfiguration is one clear message."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

import attrs
from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

if TYPE_CHECKING:
    from procrastinate_anyio import App


PREFIX: Final = "PROCRASTINATE_ANYIO_"


@attrs.frozen(kw_only=True)
class Settings:
    """What the integration reads from Django's settings.

    Attributes:
        autodiscover_module_name: the module of each installed app that is
            imported to register its tasks; empty or None: no autodiscovery.
        import_paths: more modules to import for their tasks.
        database_alias: the entry of ``DATABASES`` that holds the jobs.
        worker_defaults: the app's ``worker_defaults``.
        periodic_defaults: the app's ``periodic_defaults``.
        on_app_ready: called with the app once Django is ready (a callable or
            its dotted path).
    """

    autodiscover_module_name: str | None = "tasks"
    import_paths: Sequence[str] = ()
    database_alias: str = "default"
    worker_defaults: Mapping[str, Any] = attrs.field(factory=dict)
    periodic_defaults: Mapping[str, Any] = attrs.field(factory=dict)
    on_app_ready: Callable[[App], object] | None = None


def _get(name: str, default: Any) -> Any:
    return getattr(django_settings, PREFIX + name, default)


def settings_error(name: str, problem: str) -> ImproperlyConfigured:
    return ImproperlyConfigured(f"{PREFIX}{name}: {problem}")


def read_settings() -> Settings:
    """The integration's settings, checked.

    Raises:
        ImproperlyConfigured: a setting has the wrong type, or its database
            alias is unknown or not PostgreSQL.
    """
    defaults = Settings()
    module_name = _get("AUTODISCOVER_MODULE_NAME", defaults.autodiscover_module_name)
    if module_name is not None and not isinstance(module_name, str):
        raise settings_error(
            "AUTODISCOVER_MODULE_NAME", f"expected a str, not {module_name!r}"
        )
    import_paths = _get("IMPORT_PATHS", ())
    if isinstance(import_paths, str) or not all(
        isinstance(path, str) for path in import_paths
    ):
        raise settings_error(
            "IMPORT_PATHS", f"expected a list of str, not {import_paths!r}"
        )
    alias = _get("DATABASE_ALIAS", defaults.database_alias)
    check_database(alias)
    mappings = {}
    for name in ("WORKER_DEFAULTS", "PERIODIC_DEFAULTS"):
        value = _get(name, None) or {}
        if not isinstance(value, Mapping):
            raise settings_error(name, f"expected a dict, not {value!r}")
        mappings[name] = dict(value)
    hook = _get("ON_APP_READY", None)
    if isinstance(hook, str):
        try:
            hook = import_string(hook)
        except ImportError as exc:
            raise settings_error(
                "ON_APP_READY", f"cannot import {hook!r}: {exc}"
            ) from exc
    if hook is not None and not callable(hook):
        raise settings_error("ON_APP_READY", f"expected a callable, not {hook!r}")
    return Settings(
        autodiscover_module_name=module_name or None,
        import_paths=tuple(import_paths),
        database_alias=alias,
        worker_defaults=mappings["WORKER_DEFAULTS"],
        periodic_defaults=mappings["PERIODIC_DEFAULTS"],
        on_app_ready=hook,
    )


def check_database(alias: str) -> None:
    """Check that ``alias`` names a PostgreSQL database of ``DATABASES``.

    Raises:
        ImproperlyConfigured: it does not.
    """
    databases: Mapping[str, Mapping[str, Any]] = django_settings.DATABASES
    if alias not in databases:
        known = ", ".join(sorted(databases)) or "none"
        raise settings_error(
            "DATABASE_ALIAS",
            f"{alias!r} is not in DATABASES (known aliases: {known})",
        )
    engine = databases[alias].get("ENGINE", "")
    from django.db import connections

    if connections[alias].vendor != "postgresql":
        raise settings_error(
            "DATABASE_ALIAS",
            f"the database {alias!r} uses {engine!r}; procrastinate_anyio needs "
            "PostgreSQL (django.db.backends.postgresql)",
        )
