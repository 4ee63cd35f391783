"""Executor baselines as solvers: ``io``, ``cot``, ``cot-sc`` (``--solver io`` ...).

Each runs sf-workflows' shipped reference workflow of that name on the executor LLM. These
three use only LLM operators (no generated code runs), so they run in this process and need no
sandbox. The executor is configured from the environment (the bench CLI has no executor flags
yet): ``SF_EXECUTOR_MODEL`` (default ``gpt-4o-mini``), ``SF_EXECUTOR_BASE_URL``, and the key in
``SF_EXECUTOR_API_KEY`` or ``OPENAI_API_KEY``; responses are cached in
``SF_WORKFLOWS_CACHE_DIR`` (default ``~/.cache/sf-workflows``).
"""

from __future__ import annotations

import os
from typing import Any

from sf_bench.errors import BenchConfigError, BenchError
from sf_bench.protocols import Answer
from sf_bench.types import Problem

BASELINES = {"io": "io", "cot": "cot", "cot-sc": "cot_sc"}
"""Solver name → shipped workflow name."""


def executor_from_env(
    prefix: str = "SF_EXECUTOR", default_model: str = "gpt-4o-mini", model: str | None = None
) -> Any:
    """An ``sf_workflows.Executor`` configured from ``<prefix>_MODEL``/``_BASE_URL``/``_API_KEY``
    (and ``OPENAI_API_KEY``).

    Raises:
        BenchConfigError: sf-workflows is missing, or no key and no base URL (one clear line).
    """
    try:
        from sf_workflows import Executor, ExecutorConfig, WorkflowConfigError
    except ModuleNotFoundError as exc:
        raise BenchConfigError(
            "LLM systems need sf-workflows: "
            "pip install packages/sf-sandbox packages/sf-workflows packages/sf-bench"
        ) from exc
    model = model or os.environ.get(f"{prefix}_MODEL") or default_model
    try:
        config = ExecutorConfig(
            model=model,
            key_envs=(f"{prefix}_API_KEY", "OPENAI_API_KEY"),
            base_url_envs=(f"{prefix}_BASE_URL", "OPENAI_BASE_URL"),
        )
        return Executor(config)
    except WorkflowConfigError as exc:
        raise BenchConfigError(f"{exc} (set {prefix}_BASE_URL or {prefix}_API_KEY)") from exc


def outcome_answer(outcome: Any, **metadata: Any) -> Answer:
    """An :class:`Answer` from an ``sf_workflows.Outcome``.

    A workflow's own failure (invalid, exception, timeout, bad return...) gives an empty answer
    (score 0) with the status and reason in the metadata; an executor or sandbox failure raises,
    so the record is an error to redo rather than a wrong answer.
    """
    status = str(outcome.status)
    if status in ("llm_error", "sandbox_error"):
        raise BenchError(f"workflow run failed ({status}): {outcome.error}")
    usage = outcome.usage
    meta = {
        "workflow_status": status,
        "llm_calls": usage.calls,
        "cached_calls": usage.cached_calls,
        "cost_split": {"executor": usage.cost, "generator": 0.0},
        **metadata,
    }
    if outcome.error:
        meta["workflow_error"] = outcome.error
    return Answer(
        text=outcome.answer or "",
        cost=usage.cost,
        input_tokens=usage.prompt_tokens,
        output_tokens=usage.completion_tokens,
        metadata=meta,
    )


class BaselineSolver:
    """``io``, ``cot`` or ``cot-sc`` on the executor (a :class:`~sf_bench.protocols.Solver`)."""

    def __init__(self, name: str, executor: Any | None = None, *, timeout: float = 300.0):
        """Build the solver; ``executor`` defaults to :func:`executor_from_env`.

        Raises:
            BenchConfigError: unknown baseline or no executor endpoint.
        """
        if name not in BASELINES:
            raise BenchConfigError(f"unknown baseline {name!r}; choose from {', '.join(BASELINES)}")
        self.name = name
        self.executor = executor if executor is not None else executor_from_env()
        self.timeout = timeout
        self._runs: dict[str, int] = {}

    async def __call__(self, problem: Problem) -> Answer:
        from sf_workflows import get_template, run_workflow_unsafe

        source = get_template(BASELINES[self.name], str(problem.task_type))
        index = self._runs.get(problem.id, 0)  # the n-th call for a problem samples anew (cache tag)
        self._runs[problem.id] = index + 1
        outcome = await run_workflow_unsafe(
            source, problem, self.executor, timeout=self.timeout, validate=False, tag=str(index)
        )
        return outcome_answer(outcome, solver=self.name, executor_model=getattr(self.executor, "model", ""))
