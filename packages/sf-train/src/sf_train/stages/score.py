"""Scoring stage: run every generated workflow in the sandbox and score its answers.

Reads ``<stage>/samples.jsonl`` (:class:`GeneratedWorkflows`). Writes the sf-bench records of
every run to ``<stage>/bench/`` (resumable record by record), then ``<stage>/scores.jsonl`` and
``<stage>/score_cost.json``; a stage whose two files are complete is not run again. A workflow the
validity filters rejected is not run: it scores 0 with ``failure = "rejected: <reason>: <detail>"``.
Where the workflows run is the ``sandboxes`` argument (this machine's pool or a Ray cluster's,
:mod:`sf_train.runners`).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from sf_train.pairs import ScoredSample
from sf_train.run_files import read_jsonl, write_json, write_jsonl
from sf_train.stages.context import StageContext
from sf_train.stages.handoff import GeneratedWorkflows, ScoredWorkflows

__all__ = ["REJECTED_PREFIX", "Sandboxes", "score"]

REJECTED_PREFIX = "rejected: "
"""``ScoredSample.failure`` of a workflow the validity filters rejected (never scored or paired)."""


class Sandboxes(Protocol):
    """Where a scoring stage runs its workflows."""

    def prepare(self) -> None:
        """Set-up before the stage's clock starts (e.g. start the run's pools; may report)."""
        ...

    def open(self) -> AbstractAsyncContextManager[tuple[Any, int]]:
        """Entered inside the stage's event loop: yields (a started sandbox pool, its containers)."""
        ...


def score(
    ctx: StageContext,
    generated: GeneratedWorkflows,
    problems: Sequence[Any],
    *,
    tag: str,
    executor: Any,
    sandboxes: Sandboxes,
) -> ScoredWorkflows:
    """Score every sample of ``problems`` in ``generated`` (``runs_per_workflow`` runs each).

    Raises:
        InfraFailureError: more than ``max_infra_failure_share`` of the workflows stayed unscored
            by our failures (records so far are kept; rerunning redoes only those).
    """
    stage_dir = generated.path.parent
    path = stage_dir / "scores.jsonl"
    samples = generated.rows()
    rows = read_jsonl(path)
    expected = sum(len(samples[p.id]["completions"]) for p in problems)
    if len(rows) == expected and (stage_dir / "score_cost.json").exists():
        return ScoredWorkflows(path=path, cost=json.loads((stage_dir / "score_cost.json").read_text("utf-8")))
    ctx.report(
        f"{stage_dir.name}: running and scoring {expected} workflows × "
        f"{ctx.config.runs_per_workflow} runs in the sandbox"
    )
    rejected = {p.id: samples[p.id].get("rejected") or {} for p in problems}
    completions = {  # a rejected sample is not run: "" fails parsing at once (score 0, no cost)
        p.id: ["" if str(j) in rejected[p.id] else t for j, t in enumerate(samples[p.id]["completions"])]
        for p in problems
    }
    sandboxes.prepare()
    start = time.perf_counter()
    failed_before = int(getattr(executor, "failed_attempts", 0) or 0)
    results = asyncio.run(_run_and_score(ctx, problems, completions, stage_dir, tag, executor, sandboxes))
    cost = {
        "executor_usd": 0.0,
        "executor_input_tokens": 0.0,
        "executor_output_tokens": 0.0,
        "score_seconds": time.perf_counter() - start,
        "executor_failed_attempts": float(int(getattr(executor, "failed_attempts", 0) or 0) - failed_before),
    }
    scored: list[ScoredSample] = []
    for p in problems:
        texts = samples[p.id]["completions"]
        for index, (text, result) in enumerate(zip(texts, results[p.id], strict=True)):
            rejection = rejected[p.id].get(str(index))
            scored.append(
                ScoredSample(
                    task_id=p.id,
                    index=index,
                    prompt=samples[p.id]["prompt"],
                    completion=text,
                    score=0.0 if rejection else result.score,
                    failure=f"{REJECTED_PREFIX}{rejection['reason']}: {rejection['detail']}"
                    if rejection
                    else result.failure,
                    infra=None if rejection else result.infra,
                )
            )
            cost["executor_usd"] += result.cost
            cost["executor_input_tokens"] += result.input_tokens
            cost["executor_output_tokens"] += result.output_tokens
    write_jsonl(path, [s.to_dict() for s in scored])
    write_json(stage_dir / "score_cost.json", cost)
    return ScoredWorkflows(path=path, cost=cost)


async def _run_and_score(
    ctx: StageContext,
    problems: Sequence[Any],
    completions: dict[str, list[str]],
    stage_dir: Any,
    tag: str,
    executor: Any,
    sandboxes: Sandboxes,
) -> Any:
    """Run and score every completion in the sandbox pool ``sandboxes`` opens for the stage."""
    from sf_train.progress import ScoringBar
    from sf_train.scoring import SandboxRunner, score_completions

    cfg = ctx.config
    options = {} if ctx.profile.operator_style is None else {"operator_style": ctx.profile.operator_style}
    async with sandboxes.open() as (sandbox, containers):
        runner = SandboxRunner(executor, sandbox, timeout=cfg.workflow_timeout, run_options=options)
        return await score_completions(
            problems,
            completions,
            dataset=ctx.dataset,
            runner=runner,
            runs=cfg.runs_per_workflow,
            out_dir=stage_dir / "bench",
            concurrency=max(containers, 1) * 2,
            tag=tag,
            timeout=cfg.workflow_timeout + 60.0,
            max_infra_share=cfg.max_infra_failure_share,
            scorers=ctx.profile.scorers(executor),
            progress=None if ctx.quiet else ScoringBar(f"{stage_dir.name} scoring"),
        )
