"""Executor side: the OpenAI-compatible client, its response cache and its price table."""

from sf_workflows.executor.cache import ResponseCache, default_cache_dir, request_key
from sf_workflows.executor.client import Executor, ExecutorConfig, no_endpoint_message
from sf_workflows.executor.cost import DEFAULT_PRICES, Price, PriceTable

__all__ = [
    "DEFAULT_PRICES",
    "Executor",
    "ExecutorConfig",
    "Price",
    "PriceTable",
    "ResponseCache",
    "default_cache_dir",
    "no_endpoint_message",
    "request_key",
]
