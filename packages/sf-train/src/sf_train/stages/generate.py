"""Generation stage: k workflows per task from the policy with the current adapter.

Reads: the problems and the adapter to sample with. Writes ``<stage>/samples.jsonl`` (appended a
chunk of tasks at a time, so a killed stage continues with the tasks that have no line yet) and
``<stage>/rejections.jsonl`` (every validity-filter rejection). A task generated again makes its
earlier scores stale: they are removed with it (``scores.jsonl``, ``score_cost.json`` and its
sf-bench records).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sf_train.config import GenerationBackend
from sf_train.progress import task_bar
from sf_train.run_files import append_jsonl, read_jsonl, write_jsonl
from sf_train.stages.context import StageContext
from sf_train.stages.handoff import GeneratedWorkflows

__all__ = ["Sampler", "generate"]

Sampler = Callable[[Path | None], Any]
"""Adapter directory (None: a fresh LoRA) → a workflow generator sampling with it
(``generate_texts(prompts, k)``, ``params``, ``seconds``, ``new_tokens``)."""


def generate(
    ctx: StageContext,
    stage_dir: Path,
    problems: Sequence[Any],
    *,
    k: int,
    adapter: Path | None,
    seed: int,
    sampler: Sampler,
) -> GeneratedWorkflows:
    """Sample ``k`` workflows for every problem without a complete line in ``samples.jsonl``.

    Chunk ``j`` of the tasks still to do is seeded ``seed * 1_000_003 + index of its first task``,
    so a resumed stage draws what an uninterrupted one would have.
    """
    path = stage_dir / "samples.jsonl"
    done = {row["task_id"] for row in read_jsonl(path) if len(row.get("completions", ())) == k}
    todo = [p for p in problems if p.id not in done]
    cost = {"generator_seconds": 0.0, "generator_tokens": 0.0}
    if todo:
        # scoring starts only after generation finished, so records of tasks still to generate
        # can only be left over from an interrupted earlier attempt: drop them with the scores
        _drop_stale_scores(stage_dir, {p.id for p in todo})
        generator = sampler(adapter)
        seconds0, tokens0 = generator.seconds, generator.new_tokens
        per_call = max(1, ctx.config.generation_batch_size // k)
        if ctx.config.generation_backend == GenerationBackend.VLLM:
            per_call = max(per_call, 256)
        ctx.report(
            f"{stage_dir.name}: generating {k} workflows for {len(todo)} tasks ({len(done)} already done)"
        )
        bar = task_bar(f"{stage_dir.name} generation", len(todo), unit="tasks", quiet=ctx.quiet)
        for at in range(0, len(todo), per_call):
            chunk = todo[at : at + per_call]
            prompts = [ctx.prompt_fn(p) for p in chunk]
            generator.params = dataclasses.replace(
                generator.params, seed=seed * 1_000_003 + problems.index(chunk[0])
            )
            texts, rejected = _regenerate_invalid(
                ctx, generator, chunk, prompts, generator.generate_texts(prompts, k), stage_dir
            )
            rows = [
                {
                    "task_id": p.id,
                    "prompt": prompt,
                    "completions": group,
                    **({"rejected": rejected[i]} if rejected.get(i) else {}),
                }
                for i, (p, prompt, group) in enumerate(zip(chunk, prompts, texts, strict=True))
            ]
            append_jsonl(path, rows)
            bar.update(min(at + per_call, len(todo)))
        bar.close()
        cost["generator_seconds"] = generator.seconds - seconds0
        cost["generator_tokens"] = float(generator.new_tokens - tokens0)
    return GeneratedWorkflows(path=path, k=k, cost=cost)


def _verdict(ctx: StageContext, text: str, problem: Any) -> tuple[bool, Any]:
    """(valid, the validity filter's rejection or None) of one generated workflow."""
    from sf_workflows import as_task, parse_workflow, validate_workflow
    from sf_workflows.errors import WorkflowParseError

    rejection = ctx.profile.reject(text)
    if rejection is not None:
        return False, rejection
    if ctx.config.max_regenerations <= 0:
        return True, None
    try:
        source = parse_workflow(text)
    except WorkflowParseError:
        return False, None
    task = as_task(problem)
    return validate_workflow(source, task.task_type, problem_text=task.generator_text).ok, None


def _regenerate_invalid(
    ctx: StageContext,
    generator: Any,
    problems: Sequence[Any],
    prompts: list[str],
    texts: list[list[str]],
    stage_dir: Path,
) -> tuple[list[list[str]], dict[int, dict[str, dict[str, str]]]]:
    """Resample what fails validation or a validity filter, up to ``max_regenerations`` rounds.

    Every filter rejection goes to ``stage_dir/rejections.jsonl`` (task, sample,
    round, reason); returns the texts and the rejections still standing, per chunk index
    and sample index (those are not scored and never enter pairs).
    """
    rounds = ctx.config.max_regenerations
    log: list[dict[str, Any]] = []
    standing: dict[int, dict[str, dict[str, str]]] = {}
    for round_ in range(rounds + 1):
        bad = []
        standing = {}
        for i, group in enumerate(texts):
            for j, t in enumerate(group):
                ok, rejection = _verdict(ctx, t, problems[i])
                if rejection is not None:
                    standing.setdefault(i, {})[str(j)] = rejection.to_dict()
                    log.append(
                        {"task_id": problems[i].id, "sample": j, "round": round_, **rejection.to_dict()}
                    )
                if not ok:
                    bad.append((i, j))
        if not bad or round_ == rounds:
            break
        again = generator.generate_texts([prompts[i] for i, _ in bad], 1)
        for (i, j), (text,) in zip(bad, again, strict=True):
            texts[i][j] = text
    if log:
        append_jsonl(stage_dir / "rejections.jsonl", log)
    return texts, standing


def _drop_stale_scores(stage_dir: Path, task_ids: set[str]) -> None:
    for name in ("scores.jsonl", "score_cost.json"):
        (stage_dir / name).unlink(missing_ok=True)
    bench = stage_dir / "bench"
    for records in bench.glob("*.jsonl") if bench.exists() else ():
        kept = [r for r in read_jsonl(records) if r.get("problem_id") not in task_ids]
        write_jsonl(records, kept)
