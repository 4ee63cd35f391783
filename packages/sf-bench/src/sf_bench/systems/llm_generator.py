"""``--generator llm``: an LLM writes ``k`` workflows per problem with the generator prompt.

The generator is any OpenAI-compatible endpoint (``--generator-model`` or ``SF_GENERATOR_MODEL``,
``--base-url`` or ``SF_GENERATOR_BASE_URL``, key in ``SF_GENERATOR_API_KEY`` or
``OPENAI_API_KEY``; ``--solver llm[:MODEL]`` is the same system), called like
ScoreFlow samples (temperature 0.2, top_p 0.95, max 1000 tokens, stop at ``</graph>``), with the
prompt as one user message (ScoreFlow feeds vLLM the raw prompt without a chat template). Each
reply is parsed and validated; an invalid one is resampled (up to ``max_rounds``) or kept to be
scored 0 with its reason, as chosen (``on_invalid``). The workflows run in the sandbox on the
executor (:mod:`sf_bench.systems.template`). Generator and executor costs and tokens are kept
apart; replies served from the response cache count $0 and no tokens, as on the executor side.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sf_bench.errors import BenchConfigError
from sf_bench.systems.baselines import Endpoints
from sf_bench.systems.template import SandboxRunner, WorkflowSystem
from sf_bench.types import Problem

if TYPE_CHECKING:
    from sf_sandbox.settings import SandboxSettings
    from sf_workflows.protocols import LLM

ON_INVALID = ("resample", "score0")


class LLMWorkflowGenerator:
    """A :class:`~sf_bench.protocols.WorkflowGenerator` over an OpenAI-compatible LLM."""

    def __init__(
        self,
        llm: LLM,
        *,
        operators: Sequence[str] | None = None,
        on_invalid: str = "resample",
        max_rounds: int = 5,
        temperature: float = 0.2,
        top_p: float = 0.95,
        max_tokens: int = 1000,
        concurrency: int = 8,
    ):
        """Set up the generator; no call is made before :meth:`generate`.

        Args:
            llm: The generator (``sf_workflows.Executor`` or any ``LLM``).
            operators: Operators offered in the prompt and allowed by validation (default:
                ScoreFlow's set per task type).
            on_invalid: ``resample`` (ScoreFlow's behaviour, bounded by ``max_rounds``) or
                ``score0`` (keep the first sample; an invalid one is scored 0 with its reason).
            max_rounds: Samples drawn per slot at most under ``resample`` (>= 1).
            temperature: Sampling temperature of every generator call (ScoreFlow's 0.2).
            top_p: Nucleus sampling of every generator call (ScoreFlow's 0.95).
            max_tokens: Completion tokens per generator call (ScoreFlow's 1000).
            concurrency: Generator calls in flight at once.

        Raises:
            BenchConfigError: bad ``on_invalid`` or ``max_rounds``.
        """
        if on_invalid not in ON_INVALID:
            raise BenchConfigError(f"on_invalid must be one of {', '.join(ON_INVALID)}, got {on_invalid!r}")
        if max_rounds < 1:
            raise BenchConfigError("max_rounds must be >= 1")
        self.llm = llm
        self.operators = list(operators) if operators is not None else None
        self.on_invalid = on_invalid
        self.max_rounds = max_rounds
        self.params = {
            "temperature": temperature,
            "top_p": top_p,
            "max_tokens": max_tokens,
            "stop": ["</graph>"],
        }
        self.concurrency = concurrency
        self.generator_cost: dict[tuple[str, int], float] = {}
        """USD spent writing each (problem id, slot), resampling included."""
        self.generator_tokens: dict[tuple[str, int], tuple[int, int]] = {}
        """(prompt, completion) tokens spent writing each (problem id, slot)."""
        self.invalid: dict[tuple[str, int], list[str]] = {}
        """Validation messages of rejected samples, per (problem id, slot)."""
        self.rejected: list[dict[str, Any]] = []
        """Every rejected sample in order: ``{"problem_id", "slot", "round", "reason", "reply"}``
        (the system saves them beside the records, ``<dataset>/rejected.jsonl``)."""

    async def _one(self, problem: Problem, slot: int) -> str:
        from sf_workflows import (
            Usage,
            WorkflowParseError,
            build_generator_prompt,
            parse_workflow,
            validate_workflow,
        )
        from sf_workflows.generator.prompt import resolve_operators
        from sf_workflows.types import as_task

        task = as_task(problem)
        prompt = build_generator_prompt(task, self.operators)
        allowed = resolve_operators(task.task_type, self.operators)
        last = ""
        for round_ in range(self.max_rounds):
            completion = await self.llm.complete(
                [{"role": "user", "content": prompt}],
                cache_tag=f"{problem.id}/{slot}/{round_}",
                **self.params,
            )
            key = (problem.id, slot)
            used = Usage.of(completion)  # a cached reply: $0, no tokens spent
            self.generator_cost[key] = self.generator_cost.get(key, 0.0) + used.cost
            pt, ct = self.generator_tokens.get(key, (0, 0))
            self.generator_tokens[key] = (pt + used.prompt_tokens, ct + used.completion_tokens)
            text = completion.text if "</graph>" in completion.text else completion.text + "</graph>"
            try:
                source = parse_workflow(text)
            except WorkflowParseError as exc:  # the run reports it as "no workflow in the reply"
                source, reason = text, f"no workflow in the reply: {exc}"
            else:
                report = validate_workflow(
                    source, task.task_type, operators=allowed, problem_text=task.generator_text
                )
                if report.ok:
                    return source
                reason = report.message
            self.invalid.setdefault((problem.id, slot), []).append(reason)
            self.rejected.append(
                {"problem_id": problem.id, "slot": slot, "round": round_, "reason": reason, "reply": text}
            )
            last = source
            if self.on_invalid == "score0":
                break
        return last  # invalid: the runner validates it again and scores it 0 with the reason

    async def aclose(self) -> None:
        """Close the generator LLM's HTTP client and cache (the harness calls this at the end)."""
        closer = getattr(self.llm, "aclose", None)
        if closer is not None:
            await closer()

    async def generate(self, problems: Sequence[Problem], k: int) -> list[list[str]]:
        """``k`` workflow sources per problem, in order, at most ``concurrency`` calls at a time.

        An invalid sample is resampled or kept as the constructor's ``on_invalid`` says.
        """
        gate = asyncio.Semaphore(self.concurrency)

        async def one(problem: Problem, slot: int) -> str:
            async with gate:
                return await self._one(problem, slot)

        flat = await asyncio.gather(*(one(p, i) for p in problems for i in range(k)))
        return [list(flat[j * k : (j + 1) * k]) for j in range(len(problems))]


def llm_system(
    model: str | None,
    endpoints: Endpoints | None = None,
    *,
    pool_size: int = 2,
    sandbox: SandboxSettings | None = None,
) -> WorkflowSystem:
    """The system behind ``--generator llm`` / ``--solver llm[:MODEL]`` (see the module docstring).

    Args:
        model: The generator model (default: the endpoints' ``generator_model``,
            ``SF_GENERATOR_MODEL``, else gpt-4o-mini).
        endpoints: Where the generator and the executor come from (default: the environment).
        pool_size: Sandbox containers running workflows at once.
        sandbox: How the sandbox pool is opened (backend, image, runtime, limits).

    ``SF_GENERATOR_ON_INVALID`` (``resample``/``score0``) and ``SF_GENERATOR_MAX_ROUNDS`` tune
    invalid handling.

    Raises:
        BenchConfigError: no generator or executor endpoint, or bad settings.
    """
    endpoints = endpoints or Endpoints()
    generator_llm = endpoints.generator(model or None)
    try:
        rounds = int(os.environ.get("SF_GENERATOR_MAX_ROUNDS", "5"))
    except ValueError as exc:
        raise BenchConfigError("SF_GENERATOR_MAX_ROUNDS must be an integer") from exc
    generator = LLMWorkflowGenerator(
        generator_llm, on_invalid=os.environ.get("SF_GENERATOR_ON_INVALID", "resample"), max_rounds=rounds
    )
    runner = SandboxRunner(endpoints.executor(), pool_size=pool_size, sandbox=sandbox)
    return WorkflowSystem(generator, runner, name=f"llm:{generator_llm.model}")
