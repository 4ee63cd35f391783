"""Two kinds of failure, classified once for sf-workflows, sf-bench and sf-train.

*The system's own* failures (:attr:`FailureKind.SYSTEM`) are what the system under test did: a
workflow that is not in the generator's reply, is invalid, raises, loops past its timeout,
returns garbage, prints or allocates too much or makes too many LLM calls. They are a score of
0, as in ScoreFlow.

*Ours* (:attr:`FailureKind.INFRA`) are failures of the machinery that runs the system: the
executor endpoint (HTTP status >= 500, 429 past the retries, a refused or reset connection, the
HTTP call's own timeout, a reply that is not JSON or has no choices) and the sandbox
(``sandbox_error``). They are never a score: the executor does not cache them, retries them,
and callers keep them out of scores, confidence intervals and training pairs, redo them on
resume and count them apart.

Labels (the ``failure`` field of sf-bench records, sf-train's scores) are ``workflow:<reason>``
for the system's own failures of a workflow (:class:`WorkflowFailure`) and ``infra:endpoint`` /
``infra:sandbox`` for ours (:class:`InfraCause`).

An exception marks itself as infrastructure with an ``infrastructure`` attribute holding its
:class:`InfraCause` (``ExecutorError``, :class:`InfrastructureError`); sf-bench's harness reads
that attribute structurally, so it needs no import of sf_workflows.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol

from sf_workflows.errors import WorkflowError
from sf_workflows.status import OutcomeStatus

__all__ = [
    "INFRA_PREFIX",
    "WORKFLOW_PREFIX",
    "FailureKind",
    "InfraCause",
    "InfrastructureError",
    "OutcomeLike",
    "WorkflowFailure",
    "failure_kind",
    "failure_label",
    "infra_cause",
    "label_kind",
    "raise_for_infra",
]

WORKFLOW_PREFIX = "workflow:"
INFRA_PREFIX = "infra:"


class FailureKind(StrEnum):
    """Whose failure it is."""

    SYSTEM = "system"
    """The system under test failed: a score of 0."""
    INFRA = "infra"
    """Our machinery failed (endpoint, sandbox): not a score; redone."""


class InfraCause(StrEnum):
    """Which part of our machinery failed."""

    ENDPOINT = "endpoint"
    """The executor (or generator) endpoint: 5xx, 429 past retries, connection refused or reset,
    the HTTP call's own timeout, a malformed or empty reply."""
    SANDBOX = "sandbox"
    """The sandbox could not run the job (``sandbox_error``)."""


class WorkflowFailure(StrEnum):
    """Why a workflow failed by its own fault (the reasons summaries count)."""

    NO_WORKFLOW = "no_workflow"
    """The generator's reply holds no workflow (no ``<graph>`` block or ``class Workflow``)."""
    INVALID = "invalid"
    """The source failed validation; it was not run."""
    EXCEPTION = "exception"
    """It raised (syntax error, exception, bad operator arguments, crashed)."""
    TIMEOUT = "timeout"
    """It did not finish within the workflow's timeout."""
    BAD_RETURN = "bad_return"
    """It returned something other than a ``str``, or an answer over the size limit."""
    CALL_LIMIT = "call_limit"
    """It made more LLM calls than allowed."""
    OUTPUT_LIMIT = "output_limit"
    """It printed more than the sandbox's output cap."""
    MEMORY = "memory"
    """It ran out of memory."""


_SYSTEM: dict[OutcomeStatus, WorkflowFailure] = {
    OutcomeStatus.NO_WORKFLOW: WorkflowFailure.NO_WORKFLOW,
    OutcomeStatus.INVALID: WorkflowFailure.INVALID,
    OutcomeStatus.ERROR: WorkflowFailure.EXCEPTION,
    OutcomeStatus.TIMEOUT: WorkflowFailure.TIMEOUT,
    OutcomeStatus.BAD_RETURN: WorkflowFailure.BAD_RETURN,
    OutcomeStatus.CALL_LIMIT: WorkflowFailure.CALL_LIMIT,
    OutcomeStatus.OUTPUT_LIMIT: WorkflowFailure.OUTPUT_LIMIT,
    OutcomeStatus.MEMORY: WorkflowFailure.MEMORY,
}
_INFRA: dict[OutcomeStatus, InfraCause] = {
    OutcomeStatus.LLM_ERROR: InfraCause.ENDPOINT,
    OutcomeStatus.SANDBOX_ERROR: InfraCause.SANDBOX,
}


def failure_kind(status: OutcomeStatus | str) -> FailureKind | None:
    """Whose failure a workflow run's status is; ``None`` for ``ok``.

    Raises:
        ValueError: ``status`` is not an :class:`~sf_workflows.OutcomeStatus` value.
    """
    status = OutcomeStatus(status)
    if status in _INFRA:
        return FailureKind.INFRA
    return FailureKind.SYSTEM if status in _SYSTEM else None


def failure_label(status: OutcomeStatus | str) -> str | None:
    """The record label of a workflow run's status.

    Returns:
        ``workflow:<reason>``, ``infra:<cause>``, or ``None`` for ``ok``.

    Raises:
        ValueError: ``status`` is not an :class:`~sf_workflows.OutcomeStatus` value.
    """
    status = OutcomeStatus(status)
    if status in _INFRA:
        return INFRA_PREFIX + _INFRA[status]
    if status in _SYSTEM:
        return WORKFLOW_PREFIX + _SYSTEM[status]
    return None


def label_kind(label: str | None) -> FailureKind | None:
    """The kind of a record label (``infra:…`` → infra, any other non-empty label → system)."""
    if not label:
        return None
    return FailureKind.INFRA if label.startswith(INFRA_PREFIX) else FailureKind.SYSTEM


_CAUSES = frozenset(c.value for c in InfraCause)


def infra_cause(exc: BaseException | None) -> InfraCause | None:
    """The :class:`InfraCause` of an exception or of one in its ``__cause__``/``__context__`` chain.

    ``None`` means the exception is the system's own.

    An exception says it is ours through an ``infrastructure`` attribute (an :class:`InfraCause`
    value, or True for the endpoint). The ``openai`` client's connection, timeout, rate-limit and
    5xx errors count as the endpoint's even when a user's solver raises them unwrapped.
    """
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        mark = getattr(exc, "infrastructure", None)
        if mark is True:
            return InfraCause.ENDPOINT
        if isinstance(mark, str) and mark in _CAUSES:
            return InfraCause(mark)
        if _openai_transient(exc):
            return InfraCause.ENDPOINT
        exc = exc.__cause__ or exc.__context__
    return None


def _openai_transient(exc: BaseException) -> bool:
    """True for openai's connection/timeout errors and 429/5xx status errors.

    Decided by the exception's class names and module, without importing openai.
    """
    names = {cls.__name__ for cls in type(exc).__mro__}
    if not any(cls.__module__.startswith("openai") for cls in type(exc).__mro__):
        return False
    if names & {"APIConnectionError", "APITimeoutError", "APIResponseValidationError"}:
        return True
    status = getattr(exc, "status_code", None)
    return isinstance(status, int) and (status == 429 or status >= 500)


class InfrastructureError(WorkflowError):
    """A run failed for our reasons, not the system's (see the module docstring).

    Attributes:
        infrastructure: The :class:`InfraCause`.
    """

    def __init__(self, message: str, *, cause: InfraCause | str) -> None:
        """``cause``: an :class:`InfraCause` value."""
        super().__init__(message)
        self.infrastructure = InfraCause(cause)


class OutcomeLike(Protocol):
    """What :func:`raise_for_infra` reads: an :class:`~sf_workflows.Outcome` or the like.

    A protocol, not ``Outcome`` itself, so that this module does not import
    :mod:`sf_workflows.types` (which imports it).
    """

    @property
    def status(self) -> str:
        """An :class:`OutcomeStatus` value."""
        ...

    @property
    def error(self) -> str | None:
        """Why the run failed."""
        ...


def raise_for_infra(outcome: OutcomeLike) -> None:
    """Raise :class:`InfrastructureError` when ``outcome`` failed for our reasons.

    ``outcome`` is an :class:`~sf_workflows.Outcome` (anything with ``status`` and ``error``).
    Returns for ``ok`` and for the workflow's own failures.

    Raises:
        InfrastructureError: the status is ``llm_error`` or ``sandbox_error``; the message keeps
            the outcome's reason (which names the endpoint).
    """
    status = OutcomeStatus(outcome.status)
    cause = _INFRA.get(status)
    if cause is not None:
        raise InfrastructureError(f"{status}: {outcome.error or 'no reason given'}", cause=cause)
