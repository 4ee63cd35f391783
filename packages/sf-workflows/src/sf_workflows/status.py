"""How a workflow run ended (:class:`OutcomeStatus`).

Its own module so that :mod:`sf_workflows.types` (``Outcome``) and :mod:`sf_workflows.failures`
(the classification of those statuses) both use it without importing each other.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["OutcomeStatus"]


class OutcomeStatus(StrEnum):
    """How a workflow run ended.

    Every status but ``ok`` means no answer. ``llm_error`` and ``sandbox_error`` are our
    failures (never a score); the others are the workflow's own (score 0); see
    :mod:`sf_workflows.failures`.
    """

    OK = "ok"
    """``run_workflow`` returned a string."""
    NO_WORKFLOW = "no_workflow"
    """The source (a generator's reply) holds no workflow at all: no ``class Workflow``."""
    INVALID = "invalid"
    """The source failed parsing or validation; it was not run."""
    ERROR = "error"
    """It raised (syntax error, missing ``Workflow``, exception, bad operator arguments)."""
    TIMEOUT = "timeout"
    """It did not finish in time (awaiting forever, or blocking the interpreter)."""
    BAD_RETURN = "bad_return"
    """It returned something other than a ``str``, or an answer over the size limit."""
    OUTPUT_LIMIT = "output_limit"
    """It printed more than the sandbox's output cap."""
    MEMORY = "memory"
    """It ran out of memory."""
    CALL_LIMIT = "call_limit"
    """It made more LLM calls than allowed (it is stopped being served and scores 0)."""
    LLM_ERROR = "llm_error"
    """The executor endpoint failed for good (not the workflow's fault; worth rerunning)."""
    SANDBOX_ERROR = "sandbox_error"
    """The sandbox itself failed."""
