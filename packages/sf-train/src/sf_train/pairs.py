"""Preference pairs from scored workflows, as the official ScoreFlow code builds them.

For each task, every pair of its scored workflows with *different* scores becomes a
:class:`Pair` (winner = higher score). Pairs are pooled over all tasks and N of them are drawn
**with replacement** with probability proportional to ``d(s_w, s_l)``, by default
``(s_w − s_l)^3`` (Gen-Verse/ScoreFlow@2492563838f7 ``evaluate.py:118-165``).

A workflow that failed by its own fault (did not parse, did not validate, crashed, timed out)
must be recorded with score 0 by the caller and is paired like any other. A sample that *our*
failures left unscored (the executor endpoint or the sandbox failed: ``ScoredSample.infra``) is
never paired: it is no evidence about the workflow. Every sample passed in is accounted for in
:class:`PairStats`, and a score outside [0, 1] (or NaN) is an error, never silently skipped.

This module is pure Python (no torch), so it is cheap to import and test.
"""

from __future__ import annotations

import importlib
import math
import random
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sf_bench.jsonl import read_objects
from sf_train.errors import TrainConfigError, TrainError

__all__ = [
    "GAP_FNS",
    "PAIR_FIELDS",
    "WEIGHT_FNS",
    "Pair",
    "PairStats",
    "ScoredSample",
    "build_pairs",
    "pair_stats",
    "read_pairs",
    "resolve_gap_fn",
    "resolve_weight_fn",
    "sample_pairs",
]

WEIGHT_FNS: dict[str, Callable[[Any], Any]] = {
    "identity": lambda x: x,
    "square": lambda x: x**2,
    "sqrt": lambda x: x**0.5,
}
"""Named f(s) for Score-DPO's weights; each works on floats and on torch tensors."""

GAP_FNS: dict[str, Callable[[float, float], float]] = {
    "cube": lambda w, lo: (w - lo) ** 3,
    "square": lambda w, lo: (w - lo) ** 2,
    "linear": lambda w, lo: w - lo,
    "uniform": lambda w, lo: 1.0,
}
"""Named d(s_w, s_l) pair sampling weights. ``cube`` is the official one."""


def _resolve(spec: str, registry: dict[str, Callable[..., Any]], field: str) -> Callable[..., Any]:
    if spec in registry:
        return registry[spec]
    if ":" in spec:
        module_name, _, attr = spec.partition(":")
        try:
            fn = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise TrainConfigError(f"config field `{field}`: cannot import {spec!r} ({exc})") from exc
        if not callable(fn):
            raise TrainConfigError(f"config field `{field}`: {spec!r} is not callable")
        return fn
    raise TrainConfigError(
        f"config field `{field}`: unknown function {spec!r}; use one of {', '.join(registry)} "
        "or 'module:function'"
    )


def resolve_weight_fn(spec: str) -> Callable[[Any], Any]:
    """Return f for Score-DPO from a registry name or a ``module:function`` path.

    Raises:
        TrainConfigError: unknown name, or the path does not import to a callable.
    """
    return _resolve(spec, WEIGHT_FNS, "weight_fn")


def resolve_gap_fn(spec: str) -> Callable[[float, float], float]:
    """Return d(s_w, s_l) from a registry name or a ``module:function`` path.

    Raises:
        TrainConfigError: unknown name, or the path does not import to a callable.
    """
    return _resolve(spec, GAP_FNS, "gap_fn")


@dataclass(frozen=True, slots=True, kw_only=True)
class ScoredSample:
    """One generated workflow with its score.

    ``score`` is in [0, 1]: the mean over the workflow's runs, 0 for a workflow that failed.
    ``failure`` keeps why it failed (None when it ran), so failures stay visible in the records.
    """

    task_id: str
    """The task (problem) the workflow was generated for; pairs never cross tasks."""
    index: int
    """Position among the task's k samples (0-based); breaks ties deterministically."""
    prompt: str
    """The generator prompt, which is also the DPO prompt."""
    completion: str
    """The raw generator output (incl. ``<graph>…</graph>``), which is the DPO completion."""
    score: float
    failure: str | None = None
    infra: str | None = None
    """Set (to the reason) when our failure left the sample unscored (``infra:endpoint``,
    ``infra:sandbox``): its ``score`` means nothing and it is never paired."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (the loop's ``scores.jsonl`` rows)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ScoredSample:
        """Inverse of :meth:`to_dict`."""
        return cls(**data)


@dataclass(frozen=True, slots=True, kw_only=True)
class Pair:
    """A (winner, loser) pair of workflows for one task, with their scores (s_w > s_l)."""

    task_id: str
    prompt: str
    chosen: str
    rejected: str
    chosen_score: float
    rejected_score: float
    chosen_index: int
    rejected_index: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of the pair.

        Its ``prompt/chosen/rejected/chosen_score/rejected_score`` keys are the columns
        :class:`~sf_train.trainer.ScoreDPOTrainer` reads.
        """
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Pair:
        """Inverse of :meth:`to_dict`."""
        return cls(**data)


@dataclass(frozen=True, slots=True, kw_only=True)
class PairStats:
    """How the samples of one iteration turned into pairs (nothing goes unaccounted)."""

    tasks: int
    samples: int
    failed_samples: int
    """Samples that failed by their own fault (they are in the pool with score 0)."""
    tasks_without_pairs: int
    """Tasks whose samples all have the same score, so they give no pair."""
    pool_pairs: int
    """Pairs with different scores, pooled over tasks, before sampling."""
    mean_score: float
    """Mean over the scored samples (those with ``infra`` set are left out)."""
    infra_failed_samples: int = 0
    """Samples our failures (endpoint, sandbox) left unscored: left out of the pool."""


def _check_score(sample: ScoredSample) -> None:
    s = sample.score
    if not isinstance(s, int | float) or math.isnan(s) or not 0.0 <= s <= 1.0:
        raise TrainError(
            f"sample {sample.index} of task {sample.task_id!r} has score {s!r}; scores must be in [0, 1] "
            "(record a failed workflow as 0)"
        )


def _by_task(samples: Iterable[ScoredSample]) -> dict[str, list[ScoredSample]]:
    """The scored samples per task (samples with ``infra`` set are left out)."""
    tasks: dict[str, list[ScoredSample]] = defaultdict(list)
    for sample in samples:
        if sample.infra is not None:
            continue
        _check_score(sample)
        tasks[sample.task_id].append(sample)
    return tasks


def build_pairs(samples: Iterable[ScoredSample]) -> list[Pair]:
    """Every (winner, loser) pair of each task's samples whose scores differ, pooled over tasks.

    Samples our failures left unscored (``infra`` set) are never paired.

    Order is deterministic: tasks in first-seen order; within a task, samples sorted by
    (score descending, index), and pairs (i, j) with i before j.

    Raises:
        TrainError: a score is outside [0, 1] or NaN.
    """
    pairs: list[Pair] = []
    for task_id, group in _by_task(samples).items():
        ranked = sorted(group, key=lambda s: (-s.score, s.index))
        for i, win in enumerate(ranked):
            for lose in ranked[i + 1 :]:
                if win.score == lose.score:
                    continue
                if win.prompt != lose.prompt:
                    raise TrainError(f"task {task_id!r} has samples with different prompts")
                pairs.append(
                    Pair(
                        task_id=task_id,
                        prompt=win.prompt,
                        chosen=win.completion,
                        rejected=lose.completion,
                        chosen_score=float(win.score),
                        rejected_score=float(lose.score),
                        chosen_index=win.index,
                        rejected_index=lose.index,
                    )
                )
    return pairs


def pair_stats(samples: Sequence[ScoredSample]) -> PairStats:
    """Count tasks, samples, failures and poolable pairs (see :class:`PairStats`)."""
    pool = build_pairs(samples)
    with_pairs = {p.task_id for p in pool}
    scored = [s for s in samples if s.infra is None]
    return PairStats(
        tasks=len({s.task_id for s in samples}),
        samples=len(samples),
        failed_samples=sum(1 for s in scored if s.failure is not None),
        tasks_without_pairs=len({s.task_id for s in samples}) - len(with_pairs),
        pool_pairs=len(pool),
        mean_score=(sum(s.score for s in scored) / len(scored)) if scored else 0.0,
        infra_failed_samples=len(samples) - len(scored),
    )


def sample_pairs(
    pool: Sequence[Pair],
    n: int,
    *,
    gap_fn: str | Callable[[float, float], float] = "cube",
    seed: int = 0,
) -> list[Pair]:
    """Draw ``n`` pairs from ``pool`` with replacement, P(pair) ∝ ``gap_fn(s_w, s_l)``.

    The draw is reproducible: the same pool, ``n``, ``gap_fn`` and ``seed`` give the same list.
    An empty pool (every task had equal scores) gives an empty list.

    Raises:
        TrainError: ``gap_fn`` gives a negative or non-finite weight, or every weight is 0.
        TrainConfigError: ``gap_fn`` names no known function, or ``n`` < 0.
    """
    if n < 0:
        raise TrainConfigError(f"num_pairs must be >= 0 (got {n})")
    if not pool or n == 0:
        return []
    d = resolve_gap_fn(gap_fn) if isinstance(gap_fn, str) else gap_fn
    weights = [float(d(p.chosen_score, p.rejected_score)) for p in pool]
    for w, p in zip(weights, pool, strict=True):
        if not math.isfinite(w) or w < 0:
            raise TrainError(
                f"gap_fn gave weight {w!r} for scores ({p.chosen_score}, {p.rejected_score}); "
                "weights must be finite and >= 0"
            )
    if sum(weights) <= 0:
        raise TrainError("gap_fn gave weight 0 to every pair; nothing can be sampled")
    return random.Random(seed).choices(list(pool), weights=weights, k=n)


PAIR_FIELDS = ("prompt", "chosen", "rejected", "chosen_score", "rejected_score")
"""Keys every line of a pairs file must have (the columns the DPO trainers read)."""


def read_pairs(path: str | Path, *, allow_empty: bool = False) -> list[dict[str, Any]]:
    """Read and check a pairs JSONL file.

    Args:
        path: One JSON object per line with at least :data:`PAIR_FIELDS`; blank lines are skipped.
        allow_empty: Return [] for a file without pairs (an iteration whose tasks gave none)
            instead of raising.

    Returns:
        The rows, in file order, reduced to :data:`PAIR_FIELDS` (scores as floats).

    Raises:
        TrainConfigError: the file is missing or (unless ``allow_empty``) empty, a line is not
            JSON, lacks a field, has a non-string text or a score outside [0, 1].
    """
    path = Path(path)
    rows: list[dict[str, Any]] = []
    for number, obj in read_objects(path, error=TrainConfigError):
        where = f"{path}:{number}"
        missing = [k for k in PAIR_FIELDS if k not in obj]
        if missing:
            raise TrainConfigError(f"{where}: missing {', '.join(missing)} (needs {', '.join(PAIR_FIELDS)})")
        for key in ("prompt", "chosen", "rejected"):
            if not isinstance(obj[key], str):
                raise TrainConfigError(f"{where}: `{key}` must be a string")
        row = {k: obj[k] for k in ("prompt", "chosen", "rejected")}
        for key in ("chosen_score", "rejected_score"):
            value = obj[key]
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
                raise TrainConfigError(f"{where}: `{key}` must be a number in [0, 1] (got {value!r})")
            row[key] = float(value)
        rows.append(row)
    if not rows and not allow_empty:
        raise TrainConfigError(f"pairs file {str(path)!r} has no pairs")
    return rows
