"""Training stage: one iteration of ``config.objective`` on the iteration's pairs and scores.

Reads ``<stage>/pairs.jsonl`` (:class:`Pairs`), ``<stage>/scores.jsonl`` (:class:`ScoredWorkflows`)
and the previous iteration's adapter. Writes ``<stage>/adapter/`` (atomically) and
``<stage>/train.json``; a stage with both is done and not trained again. How and where the training
runs is the ``launcher`` argument (in this process or every process of ``accelerate launch``, or
under Ray Train: :mod:`sf_train.runners`); every launcher trains with
:func:`sf_train.training.run_training`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from sf_train.stages.context import StageContext
from sf_train.stages.handoff import Adapter, Pairs, ScoredWorkflows

__all__ = ["TrainingJob", "TrainingLauncher", "train"]


@dataclass(frozen=True, slots=True, kw_only=True)
class TrainingJob:
    """What a launcher trains: one stage's files and where to continue from."""

    stage_dir: Path
    """``<output_dir>/iter-<i>``: the adapter and ``train.json`` go here."""
    pairs: Pairs
    scored: ScoredWorkflows
    iteration: int
    """``i``; the SFT draw is seeded ``effective_pair_seed + i``."""
    previous: Path | None
    """The adapter to continue from; None = a fresh seeded LoRA (iteration 0)."""


class TrainingLauncher(Protocol):
    """A way to run a training stage."""

    def describe(self) -> str:
        """What the progress line adds after "training (objective) on N pairs" (may be "")."""
        ...

    def train(self, job: TrainingJob) -> Mapping[str, Any]:
        """Train, leave ``adapter/`` and ``train.json`` in ``job.stage_dir``; return ``train.json``."""
        ...


def train(
    ctx: StageContext,
    pairs: Pairs,
    scored: ScoredWorkflows,
    *,
    iteration: int,
    previous: Path | None,
    launcher: TrainingLauncher,
) -> Adapter:
    """Train the stage's adapter with ``launcher`` unless a finished one is on disk."""
    stage_dir = pairs.path.parent
    done = Adapter(path=stage_dir / "adapter")
    if done.saved:
        return Adapter.read(stage_dir)
    ctx.report(f"{stage_dir.name}: training ({ctx.config.objective}) on {pairs.n} pairs{launcher.describe()}")
    job = TrainingJob(stage_dir=stage_dir, pairs=pairs, scored=scored, iteration=iteration, previous=previous)
    return Adapter(path=done.path, info=launcher.train(job))
