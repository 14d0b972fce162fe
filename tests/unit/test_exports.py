"""Tests of the public API: ``__all__`` is sorted, complete and importable
(httpx ``tests/test_exported_members.py``, trio ``_tests/test_exports.py``)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import sys
import types

import pytest

import procrastinate_anyio

PUBLIC_DUNDERS = {"__version__"}


def public_names() -> set[str]:
    """Names bound in the package that do not start with ``_``."""
    return {
        name
        for name, value in vars(procrastinate_anyio).items()
        if not name.startswith("_")
        and not inspect.ismodule(value)
        and name != "annotations"  # `from __future__ import annotations`
    }


def test_all_sorted() -> None:
    """``__all__`` is sorted and has no duplicates."""
    exported = procrastinate_anyio.__all__

    assert exported == sorted(exported)
    assert len(exported) == len(set(exported))


def test_all_complete() -> None:
    """Every public name of the package is in ``__all__``, and nothing else but
    ``__version__``."""
    assert set(procrastinate_anyio.__all__) == public_names() | PUBLIC_DUNDERS


def test_all_importable() -> None:
    """``from procrastinate_anyio import *`` gives every exported name."""
    namespace: dict[str, object] = {}

    exec(
        "from procrastinate_anyio import *", namespace
    )  # the star import is what is tested

    assert set(procrastinate_anyio.__all__) <= set(namespace)


def test_exported_objects_are_ours() -> None:
    """Every exported class and function is defined in the package."""
    for name in set(procrastinate_anyio.__all__) - PUBLIC_DUNDERS:
        obj = getattr(procrastinate_anyio, name)
        assert obj.__module__.startswith("procrastinate_anyio."), name
        assert obj.__name__ == name


def test_version() -> None:
    """``__version__`` is a version string."""
    assert isinstance(procrastinate_anyio.__version__, str)
    assert procrastinate_anyio.__version__.count(".") >= 2


PUBLIC_SUBPACKAGES = {"cli", "connectors", "contrib", "testing", "worker"}

# Procrastinate's public module paths, so that porting is an import change:
# each only re-exports objects defined in the implementation modules.
PROCRASTINATE_PATHS = {
    "blueprints",
    "builtin_tasks",
    "exceptions",
    "job_context",
    "jobs",
    "manager",
    "middleware",
    "periodic",
    "retry",
    "schema",
    "tasks",
}


def test_no_public_submodules() -> None:
    """Implementation modules are private (their names start with ``_``);
    the public ones are the listed rooms and Procrastinate's paths."""
    names = [m.name for m in pkgutil.iter_modules(procrastinate_anyio.__path__)]

    assert names
    assert {name for name in names if not name.startswith("_")} == (
        PUBLIC_SUBPACKAGES | PROCRASTINATE_PATHS
    )


@pytest.mark.parametrize("name", sorted(PROCRASTINATE_PATHS))
def test_procrastinate_paths_reexport(name: str) -> None:
    """Each of Procrastinate's module paths has a sorted, complete ``__all__``
    of objects that live elsewhere in the package (re-exports, not copies)."""
    module = importlib.import_module(f"procrastinate_anyio.{name}")
    public = {
        attr
        for attr, value in vars(module).items()
        if not attr.startswith("_")
        and not inspect.ismodule(value)
        and attr != "annotations"
    }

    assert module.__all__ == sorted(module.__all__)
    assert set(module.__all__) == public
    for attr in module.__all__:
        obj = getattr(module, attr)
        if isinstance(obj, (type, types.FunctionType)):
            assert is_private(obj.__module__), (name, attr)
        else:  # a constant: a private module's; or an instance of our class
            homes = [
                mod
                for mod_name, mod in sys.modules.items()
                if is_private(mod_name) and getattr(mod, attr, None) is obj
            ]
            assert homes or is_private(type(obj).__module__), (name, attr)


def is_private(module_name: str) -> bool:
    """A module of the package with a private part in its path."""
    parts = module_name.split(".")
    return parts[0] == "procrastinate_anyio" and any(
        part.startswith("_") for part in parts[1:]
    )
