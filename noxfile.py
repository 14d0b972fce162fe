"""Development sessions: ``nox -s tests``, ``nox -s lint``, ``nox -s docs``,
``nox -s bench``, ``nox -s demo``, ``nox -s django6``."""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "venv"
nox.options.sessions = ["lint", "tests", "docs"]


def _install(session: nox.Session, *groups: str) -> None:
    session.install("--upgrade", "pip>=25.1")
    args = ["-e", "."]
    for group in groups:
        args += ["--group", group]
    session.install(*args)


@nox.session
def tests(session: nox.Session) -> None:
    """The whole test suite, on asyncio and trio."""
    _install(session, "test")
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session(python=["3.12", "3.13"])
def django6(session: nox.Session) -> None:
    """The Django integration's tests on Django 6 (its tasks backend too)."""
    _install(session, "test")  # Django 6 on these Pythons
    session.run("python", "-m", "pytest", "tests/contrib/django", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff (format and check) and mypy --strict."""
    _install(session, "lint")
    session.run("ruff", "format", "--check", ".")
    session.run("ruff", "check", ".")
    session.run("mypy")


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation, warnings as errors."""
    _install(session, "docs")
    session.run("sphinx-build", "-W", "-b", "html", "docs", "docs/_build/html")


@nox.session
def demo(session: nox.Session) -> None:
    """The demo: defer jobs and run a worker over them."""
    _install(session)
    session.install("trio")
    session.run("python", "examples/demo.py", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """The benchmark suite (pass its arguments after --)."""
    _install(session, "bench")
    session.run("python", "-m", "benchmarks", *session.posargs)
