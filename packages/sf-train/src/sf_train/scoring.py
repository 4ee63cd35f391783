"""Score generated workflows through sf-bench's harness and sf-workflows' sandboxed runner.

Each raw generator output is parsed (``sf_workflows.parse_workflow``), validated and run on its
own problem in the sandbox (``sf_workflows.run_workflow``; operator calls go to the executor
on the host), ``runs`` times; sf-bench's harness scores every answer with the dataset's
official scorer and keeps every record in ``out_dir/<dataset>.jsonl`` (resumable). A
workflow that does not parse, fails validation, crashes or times out gets score 0 and its
reason is kept (``failure``, ``workflow:<reason>``): nothing drops out.

Our failures are another matter (``sf_workflows.failures``): a run whose executor endpoint or
sandbox failed past the retries is an ``infra_error``/``scorer_error`` record, never a 0. They
are redone within the stage (``infra_rounds`` harness passes); what still fails is returned
with :attr:`SampleResult.infra` set, so the loop leaves it out of the pairs, unless more than
``max_infra_share`` of the workflows failed so: then :class:`InfraFailureError` stops the stage,
and rerunning redoes just those records (the harness's resume).

Each run of the same workflow uses its own executor cache tag, so the runs are independent
calls (as the official run's three executions are) while a resumed run replays them from the
executor cache.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sf_train.errors import StageError, TrainConfigError

if TYPE_CHECKING:
    from sf_sandbox.pool import Pool
    from sf_workflows.protocols import LLM

__all__ = ["CompletionSystem", "InfraFailureError", "SampleResult", "SandboxRunner", "score_completions"]

INFRA_ROUNDS = 3
"""Harness passes over a stage's records while some failed for our reasons."""


class InfraFailureError(StageError):
    """Too many workflows of a stage were left unscored by our failures (endpoint, sandbox)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SampleResult:
    """The score of one generated workflow over its runs."""

    score: float
    """Mean over runs (a failed run counts 0), in [0, 1]."""
    failure: str | None
    """Why a run failed (first failing run), None when every run answered."""
    cost: float
    """Executor US dollars over all runs."""
    input_tokens: int
    output_tokens: int
    runs: int
    infra: str | None = None
    """Set when our failure (endpoint, sandbox) left the workflow unscored: why, e.g.
    ``infra:endpoint: ExecutorError: ...``. Such a sample is never paired."""


class SandboxRunner:
    """sf-bench's ``WorkflowRunner`` over ``sf_workflows.run_workflow`` (one entered sandbox).

    A workflow that fails by its own fault returns an empty answer whose ``failure`` the harness
    records with score 0; a run our machinery failed (``llm_error``, ``sandbox_error``) raises
    ``sf_workflows.failures.InfrastructureError``, which the harness records as ``infra_error``.
    """

    def __init__(
        self,
        executor: LLM,
        sandbox: Pool,
        *,
        timeout: float = 120.0,
        run_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.executor = executor
        self.sandbox = sandbox
        self.timeout = timeout
        self.run_options = dict(run_options or {})
        """Extra ``run_workflow`` arguments (e.g. the profile's ``operator_style``)."""

    async def run(self, source: str, problem: Any, *, tag: str = "0") -> dict[str, Any]:
        """Run ``source`` on ``problem``; return an answer mapping sf-bench accepts."""
        from sf_workflows import run_workflow
        from sf_workflows.failures import raise_for_infra

        outcome = await run_workflow(
            source, problem, self.executor, self.sandbox, timeout=self.timeout, tag=tag, **self.run_options
        )
        raise_for_infra(outcome)
        usage = outcome.usage
        return {
            "answer": outcome.answer if outcome.ok and outcome.answer is not None else "",
            "failure": outcome.failure,
            "error": outcome.error,
            "cost": usage.cost,
            "input_tokens": usage.prompt_tokens,
            "output_tokens": usage.completion_tokens,
            "metadata": {
                "status": str(outcome.status),
                **({"error": outcome.error} if outcome.error else {}),
            },
        }


class CompletionSystem:
    """An sf-bench ``System`` that serves already generated completions.

    ``answer(problem, sample)`` parses completion ``sample`` of ``problem`` and runs it; a
    completion without a workflow is the generator's own failure, ``workflow:no_workflow``
    (score 0, nothing is run).
    """

    name = "sf-train"

    def __init__(
        self, completions: Mapping[str, Sequence[str]], runner: SandboxRunner, *, tag: str = ""
    ) -> None:
        self.completions = completions
        self.runner = runner
        self.tag = tag
        self._calls: dict[tuple[str, int], int] = defaultdict(int)

    async def prepare(self, problems: Sequence[Any], k: int, state_dir: Path | None) -> None:
        """Nothing to do: the completions exist already."""

    async def answer(self, problem: Any, sample: int) -> Any:
        """Run completion ``sample`` of ``problem`` (each call is a new run with its own tag)."""
        from sf_workflows import WorkflowParseError, parse_workflow

        run = self._calls[(problem.id, sample)]
        self._calls[(problem.id, sample)] += 1
        try:
            source = parse_workflow(self.completions[problem.id][sample])
        except WorkflowParseError as exc:
            return {
                "answer": "",
                "failure": "workflow:no_workflow",
                "error": f"no workflow in the reply: {exc}",
            }
        # a failed workflow comes back as an empty answer (scored 0) with its status in the
        # metadata, so the executor cost it spent before failing is still counted
        return await self.runner.run(source, problem, tag=f"{self.tag}:{sample}:{run}")


async def _harness_passes(
    make_harness: Callable[[], Any], problems: Sequence[Any], dataset: str, out_dir: Path, rounds: int
) -> dict[tuple[str, int], Any]:
    """Run a new harness up to ``rounds`` times (at least once); return the latest record per sample.

    A harness closes its system and scorers when its run ends, so each pass makes its own. Each
    pass redoes only the records that failed for our reasons (the harness's resume); the
    passes stop once no record is left so.
    """
    from sf_bench.records import read_records

    latest: dict[tuple[str, int], Any] = {}
    for _round in range(max(1, rounds)):
        await make_harness().arun({dataset: list(problems)})
        latest = {r.key: r for r in read_records(out_dir / f"{dataset}.jsonl")}  # later lines win
        if not any(r.infrastructure and not r.final for r in latest.values()):
            break
    return latest


def _check_infra_share(latest: Mapping[tuple[str, int], Any], total: int, max_share: float) -> None:
    """Raise :class:`InfraFailureError` when our failures left more than ``max_share`` unscored."""
    broken = [r for r in latest.values() if r.infrastructure]
    if broken and len(broken) > max_share * total:
        raise InfraFailureError(
            f"{len(broken)} of {total} workflows ({len(broken) / total:.0%}) could not be scored because the "
            f"executor endpoint or the sandbox failed past the retries (e.g. {broken[0].error}), more than "
            f"max_infra_failure_share {max_share:.0%}: the iteration stops; rerun the same command "
            "once the endpoint is back (finished records are kept and only these are redone)"
        )


def _run_failure(run: Any) -> str | None:
    if run.failure and str(run.failure).startswith("workflow:"):
        return f"{run.failure}: {run.error or ''}".strip().rstrip(":")
    if str(run.status) != "scored":
        return run.error or run.failure or str(run.status)
    status = (run.metadata or {}).get("status")
    if status not in (None, "ok"):
        return f"{status}: {(run.metadata or {}).get('error') or ''}".strip().rstrip(":")
    return None


def _result(record: Any) -> SampleResult:
    failure = next((f for f in (_run_failure(r) for r in record.runs) if f), None)
    if failure is not None:
        failure = failure[:500]
    infra = None
    if record.infrastructure:
        bad = next(r for r in record.runs if r.status in ("infra_error", "scorer_error"))
        label = bad.failure if str(bad.failure or "").startswith("infra:") else "infra:sandbox"
        infra = f"{label}: {bad.error or ''}".strip().rstrip(":")[:500]
    return SampleResult(
        infra=infra,
        score=min(1.0, max(0.0, float(record.score))),
        failure=failure,
        cost=float(record.cost) + sum(float(getattr(r, "scoring_cost", 0.0)) for r in record.runs),
        input_tokens=sum(r.input_tokens for r in record.runs),
        output_tokens=sum(r.output_tokens for r in record.runs),
        runs=len(record.runs),
    )


async def score_completions(
    problems: Sequence[Any],
    completions: Mapping[str, Sequence[str]],
    *,
    dataset: str,
    runner: SandboxRunner,
    runs: int,
    out_dir: str | Path,
    concurrency: int = 4,
    tag: str = "",
    timeout: float | None = None,
    max_infra_share: float = 0.05,
    infra_rounds: int = INFRA_ROUNDS,
    scorers: Mapping[str, Any] | None = None,
    progress: Any = None,
) -> dict[str, list[SampleResult]]:
    """Run and score every completion ``runs`` times; return the results per problem id.

    Args:
        problems: sf-bench ``Problem``s (one per task).
        completions: Problem id → its k raw generator outputs.
        dataset: sf-bench dataset name (selects the scorer).
        runner: Runs a workflow source in the sandbox.
        runs: Executions per workflow (the score is their mean).
        out_dir: The harness's records directory (resume reads it back).
        concurrency: Workflow runs in flight.
        tag: Prefix of the executor cache tags (e.g. the iteration).
        timeout: Harness timeout per run in seconds (None: rely on the runner's own).
        max_infra_share: Largest share of the workflows our failures may leave unscored
            (returned with ``infra`` set); past it :class:`InfraFailureError` is raised.
        infra_rounds: Harness passes while records failed for our reasons (each pass redoes
            only those).
        scorers: Scorer overrides for the harness (``{dataset: LLMExtract}`` for answer
            extraction); their executor spend counts in each sample's ``cost``.
        progress: The harness's progress events (``sf_bench.harness.Progress``, e.g.
            :class:`sf_train.progress.ScoringBar`); None shows nothing.

    Raises:
        InfraFailureError: more than ``max_infra_share`` of the workflows are still unscored by
            our failures after ``infra_rounds`` passes; the records on disk are kept, and a
            rerun redoes only the failed ones.
        StageError: a completion count or record is missing.
        TrainConfigError: a bad harness option.
    """
    from sf_bench.errors import BenchConfigError
    from sf_bench.harness import Harness

    ks = {len(c) for c in completions.values()}
    if len(ks) != 1:
        raise StageError(f"every task needs the same number of completions, got {sorted(ks)}")
    k = ks.pop()
    system = CompletionSystem(completions, runner, tag=tag)

    def make_harness() -> Any:
        try:
            return Harness(
                system,
                k=k,
                repeats=runs,
                concurrency=concurrency,
                timeout=timeout,
                out_dir=out_dir,
                scorers=scorers,
                progress=progress,
            )
        except BenchConfigError as exc:
            raise TrainConfigError(str(exc)) from exc

    latest = await _harness_passes(make_harness, problems, dataset, Path(out_dir), infra_rounds)
    _check_infra_share(latest, len(problems) * k, max_infra_share)
    out: dict[str, list[SampleResult]] = {}
    for problem in problems:
        row = []
        for sample in range(k):
            record = latest.get((problem.id, sample))
            if record is None:
                raise StageError(f"no score recorded for problem {problem.id!r} sample {sample}")
            row.append(_result(record))
        out[problem.id] = row
    return out
