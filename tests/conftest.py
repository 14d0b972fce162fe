"""Fixtures shared by every test folder.

Every async test runs on asyncio and on trio: the ``anyio_backend`` fixture is
parametrised explicitly (not through anyio's default, which only lists the
backends that happen to be installed), so a missing trio fails loudly instead
of silently running half of the suite.
"""

from __future__ import annotations

import pytest

BACKENDS = [
    pytest.param("asyncio", id="asyncio"),
    pytest.param("trio", id="trio"),
]


@pytest.fixture(params=BACKENDS)
def anyio_backend(request: pytest.FixtureRequest) -> str:
    backend: str = request.param
    return backend
