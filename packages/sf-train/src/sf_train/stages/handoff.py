"""The typed hand-offs between the loop's stages: each one stands for the files a stage wrote.

A stage takes the hand-offs of the stages before it and returns its own; the files are the
contract, so every hand-off can be rebuilt from a stage directory alone (``read``), which is how a
resumed run, another process of ``accelerate launch`` or a Ray Train worker picks the work up.
Values a stage keeps in memory besides its files (the generation cost, which is not on disk) are
carried along and documented per field.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sf_train.pairs import ScoredSample
from sf_train.run_files import read_jsonl

__all__ = ["Adapter", "Evaluation", "GeneratedWorkflows", "Pairs", "ScoredWorkflows"]


def _read_json(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text(encoding="utf-8")))


@dataclass(frozen=True, slots=True, kw_only=True)
class GeneratedWorkflows:
    """``<stage>/samples.jsonl``: one line per task ``{task_id, prompt, completions[k], rejected?}``.

    ``rejected`` maps a sample index (as a string) to the validity filter's verdict; every
    rejection, resampled or not, is also in ``<stage>/rejections.jsonl``.
    """

    path: Path
    """The ``samples.jsonl`` file."""
    k: int
    """Completions per task; a line with another count is incomplete and not part of the stage."""
    cost: Mapping[str, float] = field(default_factory=dict)
    """``generator_seconds`` and ``generator_tokens`` this process spent (not on disk)."""

    def rows(self) -> dict[str, dict[str, Any]]:
        """The complete lines by task id (a later line of a task wins; a torn line is ignored)."""
        return {r["task_id"]: r for r in read_jsonl(self.path) if len(r.get("completions", ())) == self.k}


@dataclass(frozen=True, slots=True, kw_only=True)
class ScoredWorkflows:
    """``<stage>/scores.jsonl`` and ``<stage>/score_cost.json``.

    ``scores.jsonl`` holds one :class:`~sf_train.pairs.ScoredSample` per workflow; the runs behind
    them are sf-bench records in ``<stage>/bench/``.
    """

    path: Path
    """The ``scores.jsonl`` file."""
    cost: Mapping[str, float]
    """``score_cost.json``: executor dollars and tokens, seconds, retried executor calls."""

    @classmethod
    def read(cls, stage_dir: Path) -> ScoredWorkflows:
        """The stage's scores as a finished scoring stage left them."""
        return cls(path=stage_dir / "scores.jsonl", cost=_read_json(stage_dir / "score_cost.json"))

    def samples(self) -> list[ScoredSample]:
        """Every scored workflow, in file order (tasks in problem order, then sample index)."""
        return [ScoredSample.from_dict(r) for r in read_jsonl(self.path)]


@dataclass(frozen=True, slots=True, kw_only=True)
class Pairs:
    """``<stage>/pairs.jsonl`` and ``<stage>/pair_stats.json``.

    ``pairs.jsonl``: the N sampled :class:`~sf_train.pairs.Pair` rows; ``pair_stats.json``: how the
    pool was built.
    """

    path: Path
    """The ``pairs.jsonl`` file."""
    n: int
    """Lines in it (0 when no task had two different scores)."""
    stats: Mapping[str, Any] = field(default_factory=dict)
    """``pair_stats.json`` as the stage built it (key order kept for ``metrics.jsonl``)."""

    @classmethod
    def read(cls, stage_dir: Path) -> Pairs:
        """The stage's pairs as a finished pairs stage left them."""
        path = stage_dir / "pairs.jsonl"
        return cls(path=path, n=len(read_jsonl(path)), stats=_read_json(stage_dir / "pair_stats.json"))


@dataclass(frozen=True, slots=True, kw_only=True)
class Adapter:
    """``<stage>/adapter/`` (the LoRA adapter, PEFT format) and ``<stage>/train.json``.

    ``train.json`` says what the training did: :class:`~sf_train.objectives.TrainResult` fields, or
    why nothing was trained.
    """

    path: Path
    """The adapter directory."""
    info: Mapping[str, Any] = field(default_factory=dict)
    """``train.json`` (empty for an adapter only handed on, as a finished iteration's)."""

    @property
    def saved(self) -> bool:
        """True when training finished: ``train.json`` and the adapter are both on disk."""
        return (self.path.parent / "train.json").exists() and (self.path / "adapter_config.json").exists()

    @classmethod
    def read(cls, stage_dir: Path) -> Adapter:
        """The stage's adapter with its ``train.json``."""
        return cls(path=stage_dir / "adapter", info=_read_json(stage_dir / "train.json"))


@dataclass(frozen=True, slots=True, kw_only=True)
class Evaluation:
    """``<name>/metrics.json`` of an evaluation.

    Its samples, records and scores lie beside it, as a generation and a scoring stage write them.
    """

    path: Path
    """The ``metrics.json`` file."""
    metrics: Mapping[str, Any]
    """Its contents: name, adapter, tasks, samples, mean score, failures, cost."""
