"""The ``worker`` command's flags, derived from :class:`WorkerOptions`.

Each flag sets one ``WorkerOptions`` field (or ``backend``, the one
``run_worker_sync`` keyword that is not a worker option). Its name, its
``run_worker_sync`` keyword and its environment variable come from the
field; what the CLI adds (a short flag, the help, how to read the value, the
sense of a switch) lives in one table, :data:`_CLI_SPECIFICS`. A field that
is not a flag is listed, with why, in :data:`NOT_CLI_FLAGS`: a test checks that
every field is in exactly one of the two, so a new option cannot be forgotten.

Worker flags also come from ``PROCRASTINATE_ANYIO_WORKER_<FLAG>`` variables,
the command line winning (Procrastinate reads ``PROCRASTINATE_WORKER_*`` the
same way). Only the options the operator set reach ``run_worker_sync``, so
that ``App(worker_defaults=...)`` applies to the others.
"""

from __future__ import annotations

import argparse
import math
from typing import TYPE_CHECKING, Any, Final

import attrs

from ..worker._options import WorkerOptions
from ._errors import CLIError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

WORKER_ENV_PREFIX: Final = "PROCRASTINATE_ANYIO_WORKER_"
PROCRASTINATE_WORKER_ENV_PREFIX: Final = "PROCRASTINATE_WORKER_"
"""Procrastinate's variables, read when ours is not set (named after the
option, and a switch's value is the option's: ``PROCRASTINATE_WORKER_WAIT=0``
is ``--one-shot``)."""

# Value parsers raise ArgumentTypeError: argparse makes it a usage error
# (exit 2), worker_options() a CLIError naming the environment variable.


def _number(
    convert: Callable[[str], float], expected: str, valid: Callable[[float], bool]
) -> Callable[[str], Any]:
    def parse(text: str) -> float:
        try:
            value = convert(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and valid(value)):
            raise argparse.ArgumentTypeError(f"expected {expected}, not {text!r}")
        return value

    return parse


positive_int: Final = _number(int, "a positive integer", lambda value: value >= 1)
_count: Final = _number(int, "0 or a positive integer", lambda value: value >= 0)
seconds: Final = _number(float, "a number of seconds", lambda value: True)
seconds_over_0: Final = _number(float, "seconds > 0", lambda value: value > 0)


def _queue_list(text: str) -> list[str]:
    queues = [queue.strip() for queue in text.split(",") if queue.strip()]
    if not queues:
        raise argparse.ArgumentTypeError(f"expected queue names like a,b, not {text!r}")
    return queues


def _non_empty(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a non-empty value")
    return text


def _choice(*choices: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in choices:
            expected = ", ".join(choices)
            raise argparse.ArgumentTypeError(
                f"expected one of {expected}, not {text!r}"
            )
        return text

    return parse


def env_switch(text: str) -> bool:
    """A switch's value in an environment variable."""
    return _switch(text)


def _switch(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise argparse.ArgumentTypeError(
        f"expected 1/0, true/false, yes/no, on/off: {text!r}"
    )


@attrs.frozen
class _Spec:
    """What the CLI adds to an option: ``parse=None`` makes a switch that
    sets ``switch_sets``; ``long`` replaces the flag named after the option."""

    help: str
    parse: Callable[[str], Any] | None = None
    metavar: str | None = None
    short: str | None = None
    long: str | None = None
    switch_sets: bool = False
    # Procrastinate's other names: a short flag, and for a switch the flags
    # that set the option the other way (``-w/--wait`` for ``--one-shot``).
    also: tuple[str, ...] = ()
    opposite: tuple[str, ...] = ()


def _seconds_flag(help_text: str) -> _Spec:
    return _Spec(help_text, seconds_over_0, "SECONDS")


# In the order of `worker --help`.
# fmt: off
_CLI_SPECIFICS: Final[Mapping[str, _Spec]] = {
    "queues": _Spec("comma-separated queues to take jobs from (default: all)", _queue_list, "QUEUES", short="-q"),
    "concurrency": _Spec("how many jobs run at once", positive_int, "N", short="-c"),
    "prefetch": _Spec("most jobs claimed ahead of the free slots while jobs are short (default: 50; 0: none)", _count, "N"),
    "backend": _Spec("the event loop (default: asyncio)", _choice("asyncio", "trio"), "{asyncio,trio}"),
    "name": _Spec("the worker's name, in logs and the workers table", _non_empty, "NAME", short="-n"),
    "wait": _Spec("stop when no job is left, instead of waiting for new ones (-w/--wait: the default, wait)", long="--one-shot", opposite=("-w", "--wait")),
    "shutdown_graceful_timeout": _seconds_flag("on shutdown, how long running jobs may take before they are cancelled"),
    "listen_notify": _Spec("do not LISTEN for new jobs, only poll, e.g. behind PgBouncer in transaction mode (-l/--listen-notify: the default, listen)", long="--no-listen-notify", opposite=("-l", "--listen-notify")),
    "delete_jobs": _Spec("delete finished jobs (default: never)", _choice("never", "successful", "always"), "{never,successful,always}"),
    "fetch_job_polling_interval": attrs.evolve(_seconds_flag("how often to look for jobs without a notification"), also=("-p",)),
    "abort_job_polling_interval": attrs.evolve(_seconds_flag("how often to look for abort requests without a notification"), also=("-a",)),
}
# fmt: on

RUN_WORKER_FLAGS: Final = frozenset({"backend"})
"""Flags of ``run_worker_sync`` keywords that are not ``WorkerOptions`` fields."""

NOT_CLI_FLAGS: Final[Mapping[str, str]] = {
    "additional_context": "a mapping of Python objects, for code to pass",
    "install_signal_handlers": "the CLI always stops on SIGINT/SIGTERM",
    "update_heartbeat_interval": "tuning, through App(worker_defaults=...)",
    "stalled_worker_timeout": "tuning, through App(worker_defaults=...)",
    "max_crash_recoveries": "tuning, through App(worker_defaults=...)",
    "fetch_batch_size": "tuning, through App(worker_defaults=...)",
    "completer_batch_size": "tuning, through App(worker_defaults=...)",
    "completer_flush_interval": "tuning, through App(worker_defaults=...)",
    "completer_buffer_size": "tuning, through App(worker_defaults=...)",
    "task_middleware": "Python callables, for code to pass",
    "worker_middleware": "Python callables, for code to pass",
}
"""The ``WorkerOptions`` fields deliberately left out of the CLI, and why."""


@attrs.frozen
class WorkerFlag:
    """A ``worker`` flag, the ``run_worker_sync`` keyword it sets, and how to
    read its value (``parse=None``: a switch that sets ``switch_value``)."""

    flags: tuple[str, ...]
    option: str
    help: str
    parse: Callable[[str], Any] | None = None
    metavar: str | None = None
    switch_value: bool = False
    opposite: tuple[str, ...] = ()

    @property
    def env_var(self) -> str:
        return WORKER_ENV_PREFIX + self.flags[-1].lstrip("-").replace("-", "_").upper()

    @property
    def procrastinate_env_var(self) -> str | None:
        """Procrastinate's variable for this option, if it has one."""
        if self.option in RUN_WORKER_FLAGS:
            return None
        return PROCRASTINATE_WORKER_ENV_PREFIX + self.option.upper()


def _derive_worker_flags() -> tuple[WorkerFlag, ...]:
    fields = attrs.fields_dict(WorkerOptions)
    unknown = set(_CLI_SPECIFICS) - set(fields) - RUN_WORKER_FLAGS
    if unknown:  # pragma: no cover - a typo in the table
        raise AssertionError(f"not WorkerOptions fields: {sorted(unknown)}")
    flags = []
    for option, spec in _CLI_SPECIFICS.items():
        long = spec.long or "--" + option.replace("_", "-")
        names = (*spec.also, long) if spec.short is None else (spec.short, long)
        flags.append(
            WorkerFlag(
                names,
                option,
                spec.help,
                spec.parse,
                spec.metavar,
                spec.switch_sets,
                spec.opposite,
            )
        )
    return tuple(flags)


WORKER_FLAGS: Final = _derive_worker_flags()


def add_worker_flags(parser: argparse.ArgumentParser) -> None:
    """Add every worker flag to the ``worker`` command's parser."""
    parser.epilog = (
        f"Each flag can also be set by an environment variable ({WORKER_ENV_PREFIX}"
        "<FLAG>, like PROCRASTINATE_ANYIO_WORKER_ONE_SHOT=1); the command line wins."
    )
    for flag in WORKER_FLAGS:
        options: dict[str, Any] = {"dest": flag.option, "default": argparse.SUPPRESS}
        if flag.parse is None:
            options.update(action="store_const", const=flag.switch_value)
        else:
            options.update(type=flag.parse, metavar=flag.metavar)
        parser.add_argument(
            *flag.flags, help=f"{flag.help} [env: {flag.env_var}]", **options
        )
        if flag.opposite:
            parser.add_argument(
                *flag.opposite,
                dest=flag.option,
                default=argparse.SUPPRESS,
                action="store_const",
                const=not flag.switch_value,
                help=argparse.SUPPRESS,  # the flag's help names it
            )


def worker_options(
    args: argparse.Namespace, environ: Mapping[str, str]
) -> dict[str, Any]:
    """The ``run_worker_sync`` keywords the operator set, ``backend`` included.

    A flag given on the command line wins; otherwise its non-empty
    ``PROCRASTINATE_ANYIO_WORKER_<FLAG>`` variable; otherwise Procrastinate's
    ``PROCRASTINATE_WORKER_<OPTION>``; otherwise the option is left out.

    Raises:
        CLIError: an environment variable holds an invalid value.
    """
    given = vars(args)
    options: dict[str, Any] = {}
    for flag in WORKER_FLAGS:
        if flag.option in given:
            options[flag.option] = given[flag.option]
            continue
        name, text = flag.env_var, environ.get(flag.env_var, "")
        ours = bool(text)
        if not ours and flag.procrastinate_env_var is not None:
            name = flag.procrastinate_env_var
            text = environ.get(name, "")
        if not text:
            continue
        try:
            value = (flag.parse or _switch)(text)
        except argparse.ArgumentTypeError as exc:
            raise CLIError(f"{name}: {exc}") from None
        if flag.parse is None and ours:  # ours is named after the switch
            value = flag.switch_value if value else not flag.switch_value
        options[flag.option] = value
    return options
