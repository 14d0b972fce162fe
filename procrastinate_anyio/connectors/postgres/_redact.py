"""Keep passwords out of error messages and logs.

libpq and psycopg quote pieces of the connection string in their errors: a
malformed one (``missing "=" after "..."``), a host that does not resolve
(``failed to resolve host '...'``, which holds the end of a password with an
``@`` in it). The connectors put those messages in their exceptions, which
end up in log lines. So every message they build from a psycopg error goes
through :func:`redact`, which hides the password, and every piece of it, in
whatever form the connection string had (URI, ``key=value``, or
``connect_kwargs``), even when the string does not parse.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Final
from urllib.parse import unquote

import psycopg

from ..._exceptions import ConnectorException

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from typing import Any

MASK: Final = "********"

# The user-info of a URI: what lies between "scheme://" and the last "@"
# before the path (libpq takes the last one; a password may hold "@").
_URI_USERINFO: Final = re.compile(r"^[a-z][a-z0-9+.-]*://([^/?#]*)@", re.IGNORECASE)
# password=value in key=value form, up to the next "key=" (a value with a
# stray space is malformed, but its pieces are still secret).
_KEYWORD_PASSWORD: Final = re.compile(
    r"(?:^|\s)password\s*=\s*(.*?)(?=\s+\w+\s*=|\s*$)", re.IGNORECASE | re.DOTALL
)
# A URI query parameter password=...
_QUERY_PASSWORD: Final = re.compile(r"[?&]password=([^&#]*)", re.IGNORECASE)


def secrets_of(conninfo: str, connect_kwargs: Mapping[str, Any]) -> tuple[str, ...]:
    """The passwords of a connection's settings and their pieces, longest
    first (so that a piece never leaves part of a longer one shown)."""
    found: set[str] = set()
    password = connect_kwargs.get("password")
    if password:
        found.add(str(password))
    try:
        parsed = psycopg.conninfo.conninfo_to_dict(conninfo)
    except psycopg.Error:
        parsed = {}
    if parsed.get("password"):
        found.add(str(parsed["password"]))
    if match := _URI_USERINFO.match(conninfo):
        _, colon, secret = match[1].partition(":")
        if colon and secret:
            found.add(secret)
    found.update(m[1] for m in _KEYWORD_PASSWORD.finditer(conninfo) if m[1])
    found.update(m[1] for m in _QUERY_PASSWORD.finditer(conninfo) if m[1])
    found.update(_pieces(found))
    # A one-character piece would mask letters all over the message.
    return tuple(sorted((s for s in found if len(s) > 1), key=len, reverse=True))


def _pieces(secrets: Iterable[str]) -> set[str]:
    """The parts a malformed string may be cut into: at spaces, quotes and
    "@", and URL-decoded."""
    pieces: set[str] = set()
    for secret in secrets:
        pieces.update(p for p in re.split(r"[\s'\"@]+", secret) if p)
        if "%" in secret:
            pieces.add(unquote(secret))
    return pieces


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret replaced by a mask."""
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def connector_error(
    prefix: str, exc: BaseException, secrets: Iterable[str], *, transient: bool = True
) -> ConnectorException:
    """A :class:`ConnectorException` for ``exc``, without its secrets. Raise
    it ``from`` :func:`cause_of` so that a psycopg error that quotes a
    secret is not chained into tracebacks."""
    message = redact(f"{prefix}{exc}".strip(), secrets)
    return ConnectorException(message, transient=transient)


def cause_of(exc: BaseException, secrets: Iterable[str]) -> BaseException | None:
    """``exc``, or None when its message holds a secret."""
    text = str(exc)
    return None if any(secret in text for secret in secrets) else exc
