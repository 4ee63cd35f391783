"""Executor baselines as solvers: ``io``, ``cot``, ``cot-sc`` (``--solver io`` ...).

Each runs sf-workflows' shipped reference workflow of that name on the executor LLM. These
three use only LLM operators (no generated code runs), so they run in this process and need no
sandbox. The executor comes from :class:`Endpoints` (``sf bench run --executor-model M
--base-url URL``), falling back to the environment: ``SF_EXECUTOR_MODEL`` (default
``gpt-4o-mini``), ``SF_EXECUTOR_BASE_URL`` (or ``OPENAI_BASE_URL``), and the key in
``SF_EXECUTOR_API_KEY`` or ``OPENAI_API_KEY`` (keys are never flags); responses are cached in
``SF_WORKFLOWS_CACHE_DIR`` (default ``~/.cache/sf-workflows``).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from sf_bench.errors import BenchConfigError
from sf_bench.protocols import Answer
from sf_bench.types import Problem

if TYPE_CHECKING:
    from sf_workflows.protocols import LLM

BASELINES = {"io": "io", "cot": "cot", "cot-sc": "cot_sc"}
"""Solver name → shipped workflow name."""


DEFAULT_MODEL = "gpt-4o-mini"
"""Executor and generator model when neither a flag nor ``SF_*_MODEL`` names one (ScoreFlow's
executor)."""


def executor_from_env(
    prefix: str = "SF_EXECUTOR",
    default_model: str = DEFAULT_MODEL,
    model: str | None = None,
    *,
    base_url: str | None = None,
    role: str = "executor",
) -> Any:
    """An ``sf_workflows.Executor`` for ``model`` at ``base_url``.

    ``model`` defaults to ``<prefix>_MODEL``, else ``default_model``; ``base_url`` to
    ``<prefix>_BASE_URL``/``OPENAI_BASE_URL``, else the OpenAI API; the key comes from
    ``<prefix>_API_KEY`` or ``OPENAI_API_KEY``.

    Raises:
        BenchConfigError: sf-workflows is missing, or no key and no base URL (one line saying
            which variable to set, or to pass ``--base-url`` to a local server).
    """
    try:
        from sf_workflows import Executor, ExecutorConfig, WorkflowConfigError
        from sf_workflows.executor.client import no_endpoint_message
    except ModuleNotFoundError as exc:
        raise BenchConfigError(
            "LLM systems need sf-workflows: "
            "pip install packages/sf-sandbox packages/sf-workflows packages/sf-bench"
        ) from exc
    model = model or os.environ.get(f"{prefix}_MODEL") or default_model
    key_envs = (f"{prefix}_API_KEY", "OPENAI_API_KEY")
    try:
        config = ExecutorConfig(
            model=model,
            base_url=base_url or None,
            key_envs=key_envs,
            base_url_envs=(f"{prefix}_BASE_URL", "OPENAI_BASE_URL"),
        )
        config.resolved()
    except WorkflowConfigError as exc:
        if "endpoint" in str(exc):
            raise BenchConfigError(
                f"{no_endpoint_message(key_envs, what=role)} (or set {prefix}_BASE_URL)"
            ) from exc
        raise BenchConfigError(str(exc)) from exc
    return Executor(config)


class Endpoints:
    """The LLM endpoints of one run, built once and shared (``sf bench run`` flags).

    ``executor()`` serves the io/cot/cot-sc solvers, the workflow runner and (by default) the
    judge; ``generator()`` the ``llm`` workflow generator; ``judge()`` the ``--judge`` scorer
    (the executor itself unless ``judge_model`` names another model). Each is an
    ``sf_workflows.Executor`` created on first use, so a run that needs no LLM needs no key.
    ``base_url`` applies to all three; keys come from the environment only
    (``SF_EXECUTOR_API_KEY``/``SF_GENERATOR_API_KEY``, else ``OPENAI_API_KEY``).

    Raises (from the getters):
        BenchConfigError: no key and no base URL for the role asked for.
    """

    def __init__(
        self,
        *,
        executor_model: str | None = None,
        generator_model: str | None = None,
        judge_model: str | None = None,
        base_url: str | None = None,
    ) -> None:
        """Remember the settings; nothing is created yet."""
        self.executor_model = executor_model
        self.generator_model = generator_model
        self.judge_model = judge_model
        self.base_url = base_url
        self._executor: Any = None
        self._generators: dict[str, Any] = {}
        self._judge: Any = None
        self._judge_used: str | None = None

    def executor(self) -> Any:
        """The executor (created on first call)."""
        if self._executor is None:
            self._executor = executor_from_env(
                "SF_EXECUTOR", model=self.executor_model, base_url=self.base_url, role="executor"
            )
        return self._executor

    def generator(self, model: str | None = None) -> Any:
        """The workflow generator's LLM for ``model`` (default: ``generator_model``)."""
        name = model or self.generator_model or os.environ.get("SF_GENERATOR_MODEL") or DEFAULT_MODEL
        if name not in self._generators:
            self._generators[name] = executor_from_env(
                "SF_GENERATOR", model=name, base_url=self.base_url, role="generator"
            )
        return self._generators[name]

    def judge(self) -> Any:
        """The judge's LLM: the executor, or ``judge_model`` at the same endpoint."""
        if self.judge_model is None or self.judge_model == self.executor().model:
            llm = self.executor()
        else:
            if self._judge is None:
                self._judge = executor_from_env(
                    "SF_EXECUTOR", model=self.judge_model, base_url=self.base_url, role="judge"
                )
            llm = self._judge
        self._judge_used = llm.model
        return llm

    def models(self) -> dict[str, str]:
        """The models of the endpoints created so far, for ``run.json``.

        Keys: ``executor_model``, ``generator_model``, ``judge_model`` (those created).
        """
        out: dict[str, str] = {}
        if self._executor is not None:
            out["executor_model"] = self._executor.model
        if self._generators:
            out["generator_model"] = ",".join(sorted(self._generators))
        if self._judge_used is not None:
            out["judge_model"] = self._judge_used
        return out

    def failures(self) -> tuple[int, int]:
        """``(failed HTTP attempts, calls failed for good)`` over the endpoints created so far.

        Both count our failures: 5xx, 429, connection, timeout, malformed or empty replies.
        """
        llms = {id(x): x for x in [self._executor, *self._generators.values(), self._judge] if x is not None}
        attempts = sum(int(getattr(x, "failed_attempts", 0)) for x in llms.values())
        return attempts, sum(int(getattr(x, "failed_calls", 0)) for x in llms.values())

    async def aclose(self) -> None:
        """Close every endpoint created (HTTP clients of this event loop, response caches)."""
        for llm in [self._executor, *self._generators.values(), self._judge]:
            if llm is not None:
                await llm.aclose()


def outcome_answer(outcome: Any, **metadata: Any) -> Answer:
    """An :class:`Answer` from an ``sf_workflows.Outcome``.

    A workflow's own failure (invalid, exception, timeout, bad return...) gives an empty answer
    (score 0) whose ``failure`` is the reason (``workflow:<reason>``), also in the metadata; an
    executor or sandbox failure raises ``sf_workflows.failures.InfrastructureError``, so the
    record is ours (``infra_error``) to redo rather than a wrong answer.
    """
    from sf_workflows.failures import raise_for_infra

    status = str(outcome.status)
    raise_for_infra(outcome)
    usage = outcome.usage
    meta = {
        "workflow_status": status,
        "llm_calls": usage.calls,
        "cached_calls": usage.cached_calls,
        "cost_split": {"executor": usage.cost, "generator": 0.0},
        "token_split": {"executor": usage.prompt_tokens + usage.completion_tokens, "generator": 0},
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
        failure=outcome.failure,
        error=outcome.error,
    )


class BaselineSolver:
    """``io``, ``cot`` or ``cot-sc`` on the executor (a :class:`~sf_bench.protocols.Solver`).

    :meth:`aclose` closes the executor (the harness calls it at the end of the run).
    """

    def __init__(self, name: str, executor: LLM | None = None, *, timeout: float = 300.0):
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
        """Run the baseline's workflow on ``problem`` in this process (no sandbox).

        Each call for the same problem samples anew (a new cache tag).
        """
        # sf-workflows types its code_runner parameter with a bare dict (partially unknown to pyright)
        from sf_workflows import get_template, run_workflow_unsafe  # pyright: ignore[reportUnknownVariableType]

        source = get_template(BASELINES[self.name], str(problem.task_type))
        index = self._runs.get(problem.id, 0)  # the n-th call for a problem samples anew (cache tag)
        self._runs[problem.id] = index + 1
        outcome = await run_workflow_unsafe(
            source, problem, self.executor, timeout=self.timeout, validate=False, tag=str(index)
        )
        return outcome_answer(outcome, solver=self.name, executor_model=getattr(self.executor, "model", ""))

    async def aclose(self) -> None:
        """Close the executor's HTTP client and cache (idempotent)."""
        closer = getattr(self.executor, "aclose", None)
        if closer is not None:
            await closer()
