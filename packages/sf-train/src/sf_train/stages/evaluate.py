"""Evaluation stage: generate and score the evaluation tasks with one adapter, no training.

Writes into ``<output_dir>/<name>/`` what a generation and a scoring stage write there, then
``metrics.json`` (:class:`Evaluation`); a stage with ``metrics.json`` is done. The loop runs it as
``heldout-<i>`` (before iteration i, ``eval_each_iteration``), ``heldout-final`` and ``eval``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sf_train.pairs import pair_stats
from sf_train.run_files import write_json
from sf_train.stages.context import StageContext
from sf_train.stages.generate import Sampler, generate
from sf_train.stages.handoff import Evaluation
from sf_train.stages.score import Sandboxes, score

__all__ = ["evaluate"]


def evaluate(
    ctx: StageContext,
    name: str,
    problems: Sequence[Any],
    *,
    adapter: Path | None,
    seed: int,
    sampler: Sampler,
    executor: Any,
    sandboxes: Sandboxes,
) -> Evaluation:
    """Sample ``eval_k`` workflows per problem with ``adapter``, score them, write the metrics."""
    stage_dir = ctx.out / name
    path = stage_dir / "metrics.json"
    if path.exists():
        return Evaluation(path=path, metrics=json.loads(path.read_text(encoding="utf-8")))
    stage_dir.mkdir(parents=True, exist_ok=True)
    generated = generate(
        ctx, stage_dir, problems, k=ctx.config.eval_k, adapter=adapter, seed=seed, sampler=sampler
    )
    scored = score(ctx, generated, problems, tag=name, executor=executor, sandboxes=sandboxes)
    samples = scored.samples()
    stats = pair_stats(samples)
    metrics = {
        "name": name,
        "adapter": str(adapter) if adapter else None,
        "tasks": len(problems),
        "samples": len(samples),
        "mean_score": stats.mean_score,
        "failed_samples": stats.failed_samples,
        "infra_failed_samples": stats.infra_failed_samples,
        "cost": {**generated.cost, **scored.cost},
    }
    write_json(path, metrics)
    ctx.report(f"{name}: mean score {metrics['mean_score']:.3f} over {len(samples)} workflows")
    return Evaluation(path=path, metrics=metrics)
