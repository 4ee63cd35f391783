"""What one failed request to the executor endpoint means: ours or the caller's, and how it reads.

:func:`attempt_error` turns an ``openai`` exception into our :class:`ExecutorError` (retryable
for our failures, with a message that names the endpoint); :func:`backoff` says how long to wait
before the next attempt.
"""

from __future__ import annotations

import random
from typing import Any

from sf_workflows.errors import ExecutorError

__all__ = ["attempt_error", "backoff"]


def backoff(retry_state: Any, base_delay: float, max_delay: float) -> float:
    """Seconds before the next attempt (``retry_state``: tenacity's, after a failed attempt).

    The endpoint's ``Retry-After`` when it sent one, else ``base_delay * 2**(n-1)`` after the
    n-th attempt; capped at ``max_delay``, with ±25% jitter.
    """
    exc = retry_state.outcome.exception() if retry_state.outcome is not None else None
    asked = getattr(exc, "retry_after", None)
    n = retry_state.attempt_number
    delay = asked if asked is not None else base_delay * 2 ** (n - 1)
    return min(max_delay, delay) * (0.75 + 0.5 * random.random())


def attempt_error(exc: Exception, base_url: str | None, model: str) -> ExecutorError:
    """Our :class:`ExecutorError` for one failed attempt.

    408, 409, 429, 5xx, connection errors and timeouts are retryable (ours); other statuses are
    the caller's configuration.
    """
    status = getattr(exc, "status_code", None)
    retryable = status is None or status in (408, 409, 429) or status >= 500
    return ExecutorError(
        _describe(exc, base_url, model),
        status_code=status,
        retryable=retryable,
        retry_after=_retry_after(exc),
    )


def _retry_after(exc: Exception) -> float | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if not headers:
        return None
    value = headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _describe(exc: Exception, base_url: str | None, model: str) -> str:
    where = base_url or "the OpenAI API"
    status = getattr(exc, "status_code", None)
    if status == 401:
        return (
            f"the executor endpoint {where} rejected the API key (HTTP 401): "
            "check SF_EXECUTOR_API_KEY/OPENAI_API_KEY"
        )
    if status == 404:
        return (
            f"the executor endpoint {where} has no model {model!r} (HTTP 404): "
            "check --executor-model and --base-url"
        )
    if status is not None:
        body = getattr(exc, "message", "") or str(exc)
        return f"executor request to {where} failed with HTTP {status}: {body[:300]}"
    return f"cannot reach the executor endpoint {where}: {type(exc).__name__}: {str(exc)[:200]}"
