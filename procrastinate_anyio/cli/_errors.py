"""The CLI's error type and exit codes."""

from __future__ import annotations

from typing import Final

EXIT_ERROR: Final = 1
EXIT_INTERRUPTED: Final = 130


class CLIError(Exception):
    """An error the operator can fix: printed as one line, exit code 1."""


def one_line(text: str) -> str:
    """``text`` on one line (libpq messages span lines: "...: Connection
    refused\\n\\tIs the server running...")."""
    return " ".join(line.strip() for line in text.splitlines() if line.strip())
