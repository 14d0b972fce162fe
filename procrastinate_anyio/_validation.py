"""Checks of names and numbers that users give: shared by the deferrer, the
job manager, tasks and worker options. A leaf module: it imports nothing of
the package."""

from __future__ import annotations

from typing import Final

MAX_NAME_LENGTH: Final = 255
"""Longest queue or task name (the columns' CHECK constraints)."""


def check_name(kind: str, value: object) -> str:
    """Validate a queue or task name: a non-empty string of at most 255 characters."""
    if not isinstance(value, str):
        raise TypeError(f"{kind} must be a string, not {value!r}")
    if not value or len(value) > MAX_NAME_LENGTH:
        raise ValueError(
            f"{kind} must be 1 to {MAX_NAME_LENGTH} characters long, "
            f"not {len(value)}: {value[:40]!r}"
        )
    if "\x00" in value:
        raise ValueError(f"{kind} cannot hold the NUL character: {value[:40]!r}")
    return value


def check_priority(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"priority must be an int, not {value!r}")
    if not -(2**31) <= value < 2**31:
        raise ValueError(f"priority must fit in 32 bits, not {value}")
    return value
