"""``python -m procrastinate_anyio``: the same CLI as ``procrastinate-anyio``."""

from __future__ import annotations

from .cli import main

if __name__ == "__main__":
    main()
