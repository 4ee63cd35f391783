"""Workflows run in this process, for comparison only, and a code runner that uses the sandbox.

:func:`run_workflow_unsafe` runs a workflow the way AFlow and ScoreFlow do (no isolation), with
the same limits, accounting and outcomes as :func:`~sf_workflows.run_workflow`;
:func:`sandbox_code_runner` keeps its Programmer and Test code in the sandbox all the same.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sf_workflows._outcome import invalid_outcome, unsafe_outcome
from sf_workflows.llm_calls import RunState, accepts_cache_tag, serve_llm
from sf_workflows.operators._harness import HarnessReply, HarnessRequest, failed_reply, parse_reply
from sf_workflows.protocols import LLM, ProblemLike
from sf_workflows.types import Outcome, as_task

if TYPE_CHECKING:
    from sf_sandbox.pool import Pool
    from sf_workflows.operators._context import CodeRunner
    from sf_workflows.operators._style import OperatorStyle

__all__ = ["run_workflow_unsafe", "sandbox_code_runner"]


def sandbox_code_runner(sandbox: Pool) -> CodeRunner:
    """A code runner for :func:`run_workflow_unsafe` that runs the harness as a sandbox job.

    So Programmer and Test code stays out of the host even when the workflow itself does not.
    Each request is one job with the sandbox's limits and the request's ``timeout``.
    """
    from sf_sandbox import Job, Limits
    from sf_workflows.operators._harness import SOURCE

    async def run(request: HarnessRequest, timeout: float) -> HarnessReply:
        base = getattr(sandbox, "limits", None)  # a duck-typed pool may have none: Limits()
        limits = dataclasses.replace(base if isinstance(base, Limits) else Limits(), timeout=timeout)
        result = await sandbox.arun(Job(source=SOURCE, stdin=json.dumps(request).encode(), limits=limits))
        reply = parse_reply(result.stdout)
        if reply is not None:
            return reply
        reason = (
            f"timeout after {timeout:g}s"
            if str(result.status) == "timeout"
            else f"code runner failed: {result.status}"
        )
        return failed_reply(reason)

    return run


@dataclass(frozen=True, slots=True)
class _Reply:
    text: str


class _CountingLLM:
    """What operators see in an unsafe run: the executor behind the same limits and accounting."""

    def __init__(self, state: RunState):
        self._state = state

    async def complete(self, messages: Sequence[Mapping[str, str]], **params: Any) -> _Reply:
        """The executor's reply to ``messages``, served as a sandboxed run's host call would be."""
        return _Reply(await serve_llm(self._state, [dict(m) for m in messages], params))


async def run_workflow_unsafe(
    source: str,
    problem: ProblemLike,
    executor: LLM,
    *,
    timeout: float = 120.0,
    validate: bool = True,
    operators: Sequence[str] | None = None,
    max_llm_calls: int = 50,
    code_runner: CodeRunner | None = None,
    code_timeout: float = 10.0,
    tag: str = "0",
    operator_style: OperatorStyle | None = None,
) -> Outcome:
    """Run a workflow **in this process, without isolation** — the way AFlow and ScoreFlow do.

    For measurement and debugging of trusted workflows only (``benchmarks/workflow_overhead.py``
    compares it with :func:`~sf_workflows.run_workflow`, whose arguments these are). The
    workflow's code runs with your credentials and files; a blocking loop stalls the event loop.
    Programmer and Test run code only through ``code_runner`` (e.g. :func:`sandbox_code_runner`);
    without one they fail.
    """
    from sf_workflows import operators as operator_module
    from sf_workflows.operators._context import RunContext, activate, deactivate
    from sf_workflows.operators._workflow import execute

    task = as_task(problem)
    started = time.monotonic()
    invalid = invalid_outcome(source, task, operators, started) if validate else None
    if invalid is not None:
        return invalid
    state = RunState(
        executor=executor, tag=tag, max_calls=max_llm_calls, pass_tag=accepts_cache_tag(executor)
    )
    llm = _CountingLLM(state)
    ctx = RunContext(
        llm=llm,
        problem=task.workflow_input(),
        task_type=task.task_type,
        entry_point=task.entry_point,
        public_tests=task.public_tests,
        run_code=code_runner,
        code_timeout=code_timeout,
        **({} if operator_style is None else {"style": operator_style}),
    )
    token = activate(ctx)
    try:
        inner = await execute(source, llm, task.workflow_input(), timeout, operator_module)
    finally:
        deactivate(token)
    outcome = unsafe_outcome(inner, state, started, timeout)
    state.cancel_pending()
    return outcome
