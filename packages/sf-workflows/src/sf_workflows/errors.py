"""Exceptions raised by sf-workflows.

A misbehaving *workflow* never raises: it gets an :class:`~sf_workflows.Outcome` with a status
and the reason. These exceptions are for the caller's mistakes and for an executor endpoint
that stays down. The CLI prints any :class:`WorkflowError` as one line (exit 2 for config
errors, 1 otherwise).
"""

from __future__ import annotations

from sf_sandbox.errors import MissingDependencyError, ScoreFlowError, UserError

__all__ = [
    "ExecutorError",
    "MissingDependencyError",
    "WorkflowConfigError",
    "WorkflowError",
    "WorkflowParseError",
]


class WorkflowError(ScoreFlowError):
    """Base class of every sf-workflows error."""


class WorkflowConfigError(WorkflowError, UserError):
    """The caller asked for something invalid (no API key or base URL, bad file, bad option)."""


class WorkflowParseError(WorkflowError):
    """A generator reply holds no workflow (no ``<graph>`` block or fenced code with ``class Workflow``)."""


class ExecutorError(WorkflowError):
    """The executor endpoint failed (after retries, for retryable failures).

    Attributes:
        status_code: The HTTP status when there was one.
        retryable: Whether the failure was of a kind that retries (429, 5xx, connection
            refused or reset, the request's own timeout, a malformed or empty reply).
        infrastructure: ``"endpoint"`` for those retryable kinds (our failure, never a score:
            see :mod:`sf_workflows.failures`), else ``None`` (a rejected key, an unknown model,
            a bad request: the caller's configuration).
        retry_after: Seconds the endpoint asked to wait (``Retry-After``), when it said.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
    ):
        super().__init__(message)
        self.status_code = status_code
        self.retryable = retryable
        self.infrastructure: str | None = "endpoint" if retryable else None
        self.retry_after = retry_after
