"""``--generator template:NAME``: a fixed shipped workflow as the "generator", run in the sandbox.

``NAME`` is one of sf-workflows' reference workflows (``io``, ``cot``, ``cot_sc``,
``medprompt``, ``multipersona``, ``self_refine``, ``scoreflow``, ``base``); every problem gets the
version for its task type, and every one of its ``k`` samples runs it (as a new sample: its own
cache tag). Workflows run inside sf-sandbox via ``sf_workflows.run_workflow``; operator LLM calls
are answered on the host by the executor (configured as in :mod:`sf_bench.systems.baselines`).
(``--solver template:NAME`` is the same system.)

The system owns its sandbox pool and executor: the harness closes both at the end of the run
(:meth:`WorkflowSystem.aclose`); the pool is also stopped at interpreter exit if nobody did.
"""

from __future__ import annotations

import asyncio
import atexit
import dataclasses
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sf_bench.errors import BenchConfigError, BenchError
from sf_bench.jsonl import append_objects, read_objects
from sf_bench.protocols import Answer, GeneratorSystem, aclose
from sf_bench.systems.baselines import Endpoints, executor_from_env, outcome_answer
from sf_bench.types import Problem

if TYPE_CHECKING:
    from sf_bench.protocols import WorkflowGenerator
    from sf_sandbox.settings import SandboxSettings
    from sf_workflows.protocols import LLM


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
        self.generator_tokens: dict[tuple[str, int], tuple[int, int]] = {}
        """Always empty: a shipped workflow costs nothing to "generate"."""

    async def generate(self, problems: Sequence[Problem], k: int) -> list[list[str]]:
        """The template's source for each problem's task type, ``k`` times."""
        from sf_workflows import get_template

        return [[get_template(self.template, str(p.task_type))] * k for p in problems]


class SandboxRunner:
    """A :class:`~sf_bench.protocols.WorkflowRunner`: ``sf_workflows.run_workflow`` in a sandbox pool.

    The pool opens on first use.

    :meth:`aclose` stops the pool and closes the executor (HTTP client, cache); :meth:`close`
    stops the pool only (it also runs at interpreter exit if nothing closed the runner). A
    closed runner refuses further runs.
    """

    def __init__(
        self,
        executor: LLM | None = None,
        *,
        pool_size: int = 2,
        jobs_per_container: int | None = None,
        timeout: float = 120.0,
        operators: Sequence[str] | None = None,
        max_llm_calls: int = 50,
        validate: bool = True,
        sandbox: SandboxSettings | None = None,
    ):
        """Options of the template system: static checks and how the sandbox pool is opened.

        ``validate=False`` skips ScoreFlow's static workflow checks (the AFlow adapter's
        converted graphs have another shape); the sandbox still contains every run.
        ``sandbox``: how the pool is opened (backend, image, runtime, limits); its size is
        ``pool_size``.
        """
        self.executor = executor if executor is not None else executor_from_env()
        self.validate = validate
        self.pool_size = pool_size
        self.settings = sandbox
        self.jobs_per_container = jobs_per_container
        """Workflows each sandbox container runs at once (``Sandbox(jobs_per_container=...)``);
        None: as ``sandbox`` says (1 by default)."""
        self.timeout = timeout
        self.operators = list(operators) if operators is not None else None
        self.max_llm_calls = max_llm_calls
        self._sandbox: Any = None
        self._lock = asyncio.Lock()
        self._runs: dict[tuple[str, str], int] = {}
        self._closed = False

    async def _get_sandbox(self) -> Any:
        async with self._lock:
            if self._closed:
                raise BenchError("this workflow runner was closed; create a new system to run again")
            if self._sandbox is None:
                from sf_workflows import open_sandbox

                sandbox = open_sandbox(
                    self.settings, pool_size=self.pool_size, jobs_per_container=self.jobs_per_container
                )
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
            validate=self.validate,
        )
        return outcome_answer(outcome, executor_model=getattr(self.executor, "model", ""))

    def close(self) -> None:
        """Stop the sandbox pool (idempotent; blocks while the containers stop)."""
        sandbox, self._sandbox = self._sandbox, None
        if sandbox is not None:
            atexit.unregister(self.close)
            sandbox.close()

    async def aclose(self) -> None:
        """Stop the sandbox pool (in a worker thread) and close the executor; idempotent."""
        self._closed = True
        try:
            if self._sandbox is not None:
                await asyncio.get_running_loop().run_in_executor(None, self.close)
        finally:
            await aclose(self.executor)


class WorkflowSystem(GeneratorSystem):
    """:class:`GeneratorSystem` that also reports the generator's cost and tokens per workflow.

    ``Answer.cost`` (tokens) is the executor's cost (tokens) of the run plus the generator's
    cost (tokens) of writing that workflow, charged to its first run only;
    ``metadata.cost_split``/``token_split`` (``{"generator", "executor"}``) keep them apart.

    The generator's spend per (problem, slot) is saved beside the workflows, in
    ``state_dir/generator_usage.jsonl``, so that a resumed run, which reuses the saved workflows
    instead of generating them again, still charges their generation to the samples it answers.
    """

    USAGE_FILE = "generator_usage.jsonl"
    REJECTED_FILE = "rejected.jsonl"
    """Generator samples rejected (no workflow, invalid) and resampled, one JSON line each."""

    def __init__(self, generator: WorkflowGenerator, runner: SandboxRunner, *, name: str):
        super().__init__(generator, runner, name=name)
        self._charged: set[tuple[str, int]] = set()
        self._usage: dict[tuple[str, int], tuple[float, int, int]] = {}
        """(cost, prompt tokens, completion tokens) of writing each (problem id, slot)."""

    @property
    def executor(self) -> Any:
        """The runner's executor."""
        return getattr(self.runner, "executor", None)

    def _generated(self) -> dict[tuple[str, int], tuple[float, int, int]]:
        """What the generator reports it spent so far, per (problem id, slot).

        Each value is (cost, prompt, completion tokens), from the generator's
        ``generator_cost``/``generator_tokens`` (both optional).
        """
        costs = getattr(self.generator, "generator_cost", {}) or {}
        tokens = getattr(self.generator, "generator_tokens", {}) or {}
        out: dict[tuple[str, int], tuple[float, int, int]] = {}
        for key in {*costs, *tokens}:
            pt, ct = tokens.get(key, (0, 0))
            out[key] = (float(costs.get(key, 0.0)), int(pt), int(ct))
        return out

    async def prepare(self, problems: Sequence[Problem], k: int, state_dir: Path | None) -> None:
        """Generate (or reload) the workflows; record what generating them cost.

        Raises:
            BenchError: the generator failed or the state files cannot be written.
        """
        path = state_dir / self.USAGE_FILE if state_dir is not None else None
        if path is not None and path.exists():
            for _, entry in read_objects(path, skip_bad=True):  # a torn line is skipped
                try:
                    key = (str(entry["problem_id"]), int(entry["slot"]))
                    self._usage[key] = (
                        float(entry["cost"]),
                        int(entry.get("prompt_tokens", 0)),
                        int(entry.get("completion_tokens", 0)),
                    )
                except (ValueError, KeyError, TypeError):
                    continue  # that spend is not known any more
        before = self._generated()
        rejected_before = len(getattr(self.generator, "rejected", ()))
        try:
            await super().prepare(problems, k, state_dir)
        finally:
            rejected = list(getattr(self.generator, "rejected", ()))[rejected_before:]
            if state_dir is not None and rejected:
                _append_lines(state_dir / self.REJECTED_FILE, rejected)
        new = {key: value for key, value in self._generated().items() if before.get(key) != value}
        self._usage.update(new)
        if path is not None and new:
            lines = "".join(
                json.dumps(
                    {
                        "problem_id": key[0],
                        "slot": key[1],
                        "cost": cost,
                        "prompt_tokens": pt,
                        "completion_tokens": ct,
                    }
                )
                + "\n"
                for key, (cost, pt, ct) in sorted(new.items())
            )
            try:
                with path.open("a", encoding="utf-8") as f:
                    f.write(lines)
                    f.flush()
                    os.fsync(f.fileno())
            except OSError as e:
                raise BenchError(f"cannot save the generator's usage to {path}: {e.strerror or e}") from e

    async def answer(self, problem: Problem, sample: int) -> Answer:
        """Run workflow ``sample``; its answer also carries the generator's cost and tokens.

        A slot's generation cost is charged to its first answer only (a rerun adds 0).
        """
        answer: Answer = await super().answer(problem, sample)
        key = (problem.id, sample)
        cost, pt, ct = (0.0, 0, 0) if key in self._charged else self._usage.get(key, (0.0, 0, 0))
        self._charged.add(key)
        cost_split = {**dict(answer.metadata.get("cost_split", {})), "generator": cost}
        token_split = {
            "executor": answer.input_tokens + answer.output_tokens,
            **dict(answer.metadata.get("token_split", {})),
            "generator": pt + ct,
        }
        return dataclasses.replace(
            answer,
            cost=answer.cost + cost,
            input_tokens=answer.input_tokens + pt,
            output_tokens=answer.output_tokens + ct,
            metadata={**answer.metadata, "cost_split": cost_split, "token_split": token_split},
        )

    def close(self) -> None:
        """Stop the runner's sandbox (sync; :meth:`aclose` also closes the LLM clients)."""
        self.runner.close()  # type: ignore[attr-defined]


def _append_lines(path: Path, rows: Sequence[Any]) -> None:
    """Append JSON lines to ``path`` (fsynced).

    Raises:
        BenchError: the file cannot be written.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        append_objects(path, rows)
    except OSError as e:
        raise BenchError(f"cannot save rejected generator samples to {path}: {e.strerror or e}") from e


def template_system(
    name: str | None,
    endpoints: Endpoints | None = None,
    *,
    pool_size: int = 2,
    sandbox: SandboxSettings | None = None,
) -> WorkflowSystem:
    """The system behind ``--generator template:NAME`` (and ``--solver template:NAME``).

    Args:
        name: A shipped workflow (``io``, ``cot``, ``cot_sc``, ``scoreflow``...).
        endpoints: Where the executor comes from (default: the environment).
        pool_size: Sandbox containers running workflows at once.
        sandbox: How the sandbox pool is opened (backend, image, runtime, limits).

    Raises:
        BenchConfigError: no or unknown NAME, or no executor endpoint.
    """
    if not name:
        raise BenchConfigError(
            "template:NAME needs a workflow name, e.g. template:cot_sc "
            "(io, cot, cot_sc, medprompt, multipersona, self_refine, scoreflow, base)"
        )
    generator = TemplateGenerator(name)
    executor = (endpoints or Endpoints()).executor()
    return WorkflowSystem(
        generator,
        SandboxRunner(executor, pool_size=pool_size, sandbox=sandbox),
        name=f"template:{generator.template}",
    )
