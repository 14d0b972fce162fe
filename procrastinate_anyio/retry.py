"""Retry strategies, under Procrastinate's module path (``procrastinate.retry``)."""

from __future__ import annotations

from ._retry import BaseRetryStrategy as BaseRetryStrategy
from ._retry import RetryDecision as RetryDecision
from ._retry import RetryStrategy as RetryStrategy
from ._retry import get_retry_strategy as get_retry_strategy

__all__ = [
    "BaseRetryStrategy",
    "RetryDecision",
    "RetryStrategy",
    "get_retry_strategy",
]
