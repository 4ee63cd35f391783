"""``--solver template:NAME``: a fixed shipped workflow as the "generator", run in the sandbox.

``NAME`` is one of sf-workflows' reference workflows (``io``, ``cot``, ``cot_sc``,
``medprompt``, ``multipersona``, ``self_refine``, ``scoreflow``, ``base``); every problem gets the
version for its task type, and every one of its ``k`` samples runs it (as a new sample: its own
cache tag). Workflows run inside sf-sandbox via ``sf_workflows.run_workflow``; operator LLM calls
are answered on the host by the executor (configured as in :mod:`sf_bench.systems.baselines`).
"""

from __future__ import annotations

import asyncio
import atexit
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sf_bench.errors import BenchConfigError
from sf_bench.protocols import Answer, GeneratorSystem
from sf_bench.systems.baselines import executor_from_env, outcome_answer
from sf_bench.types import Problem


class TemplateGenerator:
    """A :class:`~sf_bench.protocols.WorkflowGenerator` that returns a shipped workflow ``k`` times."""

    def __init__(self, name: str):
        """Raises: BenchConfigError: unknown template name."""
        from sf_workflows import WorkflowConfigError
        from sf_workflows.templates import canonical_name

        try:
            self.template = canonical_name(name)
        except WorkflowConfigError as exc:
            raise BenchConfigError(str(exc)) from exc
        self.generator_cost: dict[tuple[str, int], float] = {}

    async def generate(self, problems: Sequence[Problem], k: int) -> list[list[str]]:
        from sf_workflows import get_template

        return [[get_template(self.template, str(p.task_type))] * k for p in problems]


class SandboxRunner:
    """A :class:`~sf_bench.protocols.WorkflowRunner`: ``sf_workflows.run_workflow`` in a sandbox
    pool it opens on first use (closed by :meth:`close`, or at interpreter exit)."""

    def __init__(
        self,
        executor: Any | None = None,
        *,
        pool_size: int = 2,
        timeout: float = 120.0,
        operators: Sequence[str] | None = None,
        max_llm_calls: int = 50,
    ):
        self.executor = executor if executor is not None else executor_from_env()
        self.pool_size = pool_size
        self.timeout = timeout
        self.operators = list(operators) if operators is not None else None
        self.max_llm_calls = max_llm_calls
        self._sandbox: Any = None
        self._lock = asyncio.Lock()
        self._runs: dict[tuple[str, str], int] = {}

    async def _get_sandbox(self) -> Any:
        async with self._lock:
            if self._sandbox is None:
                from sf_workflows import open_sandbox

                sandbox = open_sandbox(pool_size=self.pool_size)
                await asyncio.get_running_loop().run_in_executor(None, sandbox.start)
                self._sandbox = sandbox
                atexit.register(self.close)
            return self._sandbox

    async def run(self, source: str, problem: Problem) -> Answer:
        """Run ``source`` on ``problem``; a workflow failure is an empty answer (score 0) with the reason."""
        from sf_workflows import run_workflow

        sandbox = await self._get_sandbox()
        key = (problem.id, source)
        index = self._runs.get(key, 0)  # repeats of the same workflow sample anew (own cache tag)
        self._runs[key] = index + 1
        outcome = await run_workflow(
            source,
            problem,
            self.executor,
            sandbox,
            timeout=self.timeout,
            operators=self.operators,
            max_llm_calls=self.max_llm_calls,
            tag=str(index),
        )
        return outcome_answer(outcome, executor_model=getattr(self.executor, "model", ""))

    def close(self) -> None:
        """Stop the sandbox pool (idempotent)."""
        sandbox, self._sandbox = self._sandbox, None
        if sandbox is not None:
            sandbox.close()


class WorkflowSystem(GeneratorSystem):
    """:class:`GeneratorSystem` that also reports the generator's cost per workflow.

    ``Answer.cost`` is the executor's cost of the run plus the generator's cost of writing that
    workflow (charged to its first run only); ``metadata.cost_split`` keeps them apart.
    """

    def __init__(self, generator: Any, runner: SandboxRunner, *, name: str):
        super().__init__(generator, runner, name=name)
        self._charged: set[tuple[str, int]] = set()

    async def prepare(self, problems: Sequence[Problem], k: int, state_dir: Path | None) -> None:
        await super().prepare(problems, k, state_dir)

    async def answer(self, problem: Problem, sample: int) -> Answer:
        answer: Answer = await super().answer(problem, sample)
        costs = getattr(self.generator, "generator_cost", {})
        key = (problem.id, sample)
        generator_cost = 0.0 if key in self._charged else float(costs.get(key, 0.0))
        self._charged.add(key)
        split = {**dict(answer.metadata.get("cost_split", {})), "generator": generator_cost}
        return Answer(
            text=answer.text,
            cost=answer.cost + generator_cost,
            input_tokens=answer.input_tokens,
            output_tokens=answer.output_tokens,
            metadata={**answer.metadata, "cost_split": split},
        )

    def close(self) -> None:
        """Stop the runner's sandbox."""
        self.runner.close()  # type: ignore[attr-defined]


def template_system(name: str | None) -> WorkflowSystem:
    """The system behind ``--solver template:NAME``.

    Raises:
        BenchConfigError: no or unknown NAME, or no executor endpoint.
    """
    if not name:
        raise BenchConfigError(
            "--solver template:NAME needs a workflow name, e.g. template:cot_sc "
            "(io, cot, cot_sc, medprompt, multipersona, self_refine, scoreflow, base)"
        )
    generator = TemplateGenerator(name)
    return WorkflowSystem(generator, SandboxRunner(), name=f"template:{generator.template}")
