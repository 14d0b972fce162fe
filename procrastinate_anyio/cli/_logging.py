"""The CLI's logging: records on stderr, with their ``extra`` fields shown."""

from __future__ import annotations

import logging
import sys


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


def configure_logging(verbosity: int) -> None:
    """Log to stderr: warnings by default, ``-v`` info, ``-vv`` debug."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        ExtraFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    levels = {0: logging.WARNING, 1: logging.INFO}
    logging.basicConfig(
        level=levels.get(verbosity, logging.DEBUG), handlers=[handler], force=True
    )
