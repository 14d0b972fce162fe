"""Tests of the public API: ``__all__`` is sorted, complete and importable
(httpx ``tests/test_exported_members.py``, trio ``_tests/test_exports.py``)."""

from __future__ import annotations

import inspect
import pkgutil

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


def test_no_public_submodules() -> None:
    """Implementation modules are private (their names start with ``_``);
    the public subpackages are the listed rooms."""
    names = [m.name for m in pkgutil.iter_modules(procrastinate_anyio.__path__)]

    assert names
    assert {name for name in names if not name.startswith("_")} == PUBLIC_SUBPACKAGES
