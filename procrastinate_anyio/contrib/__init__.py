"""Integrations with frameworks: ``contrib.django`` and ``contrib.asgi``.

Each subpackage imports its framework; nothing else in the library imports
them, so the core stays free of framework dependencies.
"""
