"""How a workflow run's end becomes an :class:`~sf_workflows.Outcome`.

One set of rules for both ways to run a workflow: the host's run state (executor failure, call
limit) decides first, then what the workflow itself reported; a sandbox run adds the sandbox's
own verdicts (timeout, output cap, memory, sandbox failure, no result). A ``timeout`` during which
an executor call had waited long (:data:`STALL_SHARE`) is the endpoint's fault: ``llm_error``.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sf_workflows.generator.validate import validate_workflow
from sf_workflows.llm_calls import RunState
from sf_workflows.status import OutcomeStatus
from sf_workflows.types import Outcome, Task, Usage

if TYPE_CHECKING:
    from sf_sandbox import Result

__all__ = ["STALL_SHARE", "invalid_outcome", "sandbox_outcome", "unsafe_outcome"]

STALL_SHARE = 0.5
"""A workflow that times out while one of its executor calls has waited for at least this share
of the workflow's timeout timed out because of the endpoint (hung or too slow): ``llm_error``,
ours, not the workflow's ``timeout``."""
_WORKFLOW_CLASS = re.compile(r"\bclass\s+Workflow\b")
_STDERR_TAIL = 2000
"""Characters of the job's stderr an outcome keeps (the last ones)."""


def invalid_outcome(
    source: str, task: Task, operators: Sequence[str] | None, started: float
) -> Outcome | None:
    """The ``no_workflow`` or ``invalid`` outcome of a workflow source, or None when it passes.

    ``no_workflow`` is the outcome of a source without ``class Workflow`` (a generator reply with no
    workflow in it), ``invalid`` that of one the validator rejects.
    """
    if not _WORKFLOW_CLASS.search(source):
        return Outcome(
            status=OutcomeStatus.NO_WORKFLOW,
            error="no workflow in the reply: it defines no `class Workflow` "
            "(expected a <graph> block or fenced Python code holding one)",
            duration=time.monotonic() - started,
        )
    report = validate_workflow(source, task.task_type, operators=operators, problem_text=task.generator_text)
    if report.ok:
        return None
    return Outcome(status=OutcomeStatus.INVALID, error=report.message, duration=time.monotonic() - started)


def sandbox_outcome(
    result: Result, result_file: str, state: RunState, started: float, timeout: float
) -> Outcome:
    """The outcome of a sandbox run: its ``result`` (``result_file`` collected) and host ``state``."""
    waited = state.waited()
    return _stalled(_sandbox_outcome(result, result_file, state, started, timeout), state, timeout, waited)


def unsafe_outcome(inner: Mapping[str, Any], state: RunState, started: float, timeout: float) -> Outcome:
    """The outcome of an in-process run: what the workflow returned (``inner``) and host ``state``."""
    waited = state.waited()
    common = _Common(usage=state.usage, duration=time.monotonic() - started)
    outcome = _host_failure(state, common) or _reported(inner, common)
    return _stalled(outcome, state, timeout, waited)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class _Common:
    """The fields every outcome of one run shares."""

    usage: Usage
    duration: float
    stderr: str = ""

    def outcome(
        self, status: OutcomeStatus, *, answer: str | None = None, error: str | None = None
    ) -> Outcome:
        """An outcome with these fields."""
        return Outcome(
            status=status,
            answer=answer,
            error=error,
            usage=self.usage,
            duration=self.duration,
            stderr=self.stderr,
        )


def _host_failure(state: RunState, common: _Common) -> Outcome | None:
    """``llm_error`` or ``call_limit`` when the host side ended the run, else None."""
    if state.llm_error is not None:
        return common.outcome(OutcomeStatus.LLM_ERROR, error=f"executor failed: {state.llm_error}")
    if state.over_limit:
        return common.outcome(
            OutcomeStatus.CALL_LIMIT, error=f"the workflow tried more than {state.max_calls} LLM calls"
        )
    return None


def _reported(inner: Mapping[str, Any], common: _Common) -> Outcome:
    """The outcome the workflow reported (``{"status", "answer", "error"}``).

    Raises:
        ValueError: ``inner["status"]`` is no :class:`OutcomeStatus`.
        KeyError: ``inner`` has no ``status``.
    """
    kind = OutcomeStatus(inner["status"])
    if kind is OutcomeStatus.OK:
        return common.outcome(kind, answer=inner.get("answer"))
    return common.outcome(kind, error=inner.get("error") or str(kind))


def _stalled(outcome: Outcome, state: RunState, timeout: float, waited: float) -> Outcome:
    """``outcome``, or ``llm_error`` when a ``timeout`` was the endpoint hanging.

    ``llm_error`` when it is a ``timeout`` during which an executor call had waited ``waited`` >=
    :data:`STALL_SHARE` of ``timeout`` seconds (the endpoint hung).
    """
    if outcome.status is not OutcomeStatus.TIMEOUT or waited < STALL_SHARE * timeout:
        return outcome
    where = getattr(state.executor, "base_url", None) or getattr(state.executor, "model", None)
    at = f" {where}" if where else ""
    return dataclasses.replace(
        outcome,
        status=OutcomeStatus.LLM_ERROR,
        error=f"executor failed: the executor endpoint{at} left a call unanswered for {waited:.1f} s "
        f"when the workflow's {timeout:g} s timeout hit (the endpoint hung or is too slow)",
    )


def _sandbox_outcome(
    result: Result, result_file: str, state: RunState, started: float, timeout: float
) -> Outcome:
    """The outcome of a sandbox run before the stall rule (:func:`_stalled`)."""
    common = _Common(
        usage=state.usage, duration=time.monotonic() - started, stderr=_tail(result.stderr or "")
    )
    failed = _host_failure(state, common) or _sandbox_verdict(result, common, timeout)
    if failed is not None:
        return failed
    raw = result.files.get(result_file)
    if raw is None:
        last = (result.stderr.strip().splitlines() or [""])[-1]
        reason = f"the workflow process ended without a result (exit {result.exit_code})" + (
            f": {last}" if last else ""
        )
        return common.outcome(OutcomeStatus.ERROR, error=reason)
    try:
        return _reported(json.loads(raw.decode("utf-8", "replace")), common)
    except (ValueError, KeyError, TypeError):
        return common.outcome(OutcomeStatus.ERROR, error="the workflow's result file is corrupt")


def _sandbox_verdict(result: Result, common: _Common, timeout: float) -> Outcome | None:
    """The outcome when the sandbox ended the job (timeout, output cap, memory, its own failure)."""
    from sf_sandbox import Status

    status = result.status
    if status is Status.TIMEOUT:
        return common.outcome(
            OutcomeStatus.TIMEOUT,
            error=f"killed after {result.duration:.1f}s: the workflow blocked without awaiting "
            f"(limit {timeout:g}s)",
        )
    if status is Status.OUTPUT_LIMIT:
        return common.outcome(
            OutcomeStatus.OUTPUT_LIMIT,
            error=f"the workflow printed too much ({result.error or 'output cap'})",
        )
    if status is Status.MEMORY:
        return common.outcome(OutcomeStatus.MEMORY, error=result.error or "out of memory")
    if status is Status.SANDBOX_ERROR:
        return common.outcome(OutcomeStatus.SANDBOX_ERROR, error=result.error or "sandbox failure")
    return None


def _tail(text: str, n: int = _STDERR_TAIL) -> str:
    return text[-n:] if len(text) > n else text
