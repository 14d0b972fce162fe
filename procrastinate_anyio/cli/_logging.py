"""The CLI's logging: records on stderr, with their ``extra`` fields shown."""

from __future__ import annotations

import logging
import sys
from typing import Final, Literal


class ExtraFormatter(logging.Formatter):
    """Shows a record's ``extra`` after its message: ``[action=defer_job job_id=3]``."""

    _standard = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        extra = {k: v for k, v in vars(record).items() if k not in self._standard}
        if not extra:
            return line
        action = extra.pop("action", None)
        fields = [f"action={action}"] if action is not None else []
        fields += [f"{key}={value!r}" for key, value in extra.items()]
        return f"{line} [{' '.join(fields)}]"


DEFAULT_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(
    verbosity: int,
    *,
    level: int | None = None,
    fmt: str | None = None,
    style: Literal["%", "{", "$"] = "%",
    default_level: int = logging.WARNING,
) -> None:
    """Log to stderr: at ``default_level``, ``-v`` info, ``-vv`` debug, or
    ``level`` when given; lines formatted by ``fmt`` (in ``style``), by
    default ours with the records' ``extra`` shown."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt is None:
        handler.setFormatter(ExtraFormatter(DEFAULT_FORMAT))
    else:
        handler.setFormatter(logging.Formatter(fmt, style=style))
    if level is None:
        levels = {0: default_level, 1: min(default_level, logging.INFO)}
        level = levels.get(verbosity, logging.DEBUG)
    logging.basicConfig(level=level, handlers=[handler], force=True)
