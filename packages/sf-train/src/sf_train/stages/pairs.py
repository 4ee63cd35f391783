"""Pairs stage: the N score-weighted preference pairs of an iteration.

Reads ``<stage>/scores.jsonl`` (:class:`ScoredWorkflows`). Writes ``<stage>/pairs.jsonl`` and
``<stage>/pair_stats.json``. Deterministic (seed ``effective_pair_seed + iteration``), so it is
simply recomputed on resume. Workflows the validity filters rejected never enter the pool.
"""

from __future__ import annotations

from dataclasses import asdict

from sf_train.pairs import build_pairs, pair_stats, sample_pairs
from sf_train.run_files import write_json, write_jsonl
from sf_train.stages.context import StageContext
from sf_train.stages.handoff import Pairs, ScoredWorkflows
from sf_train.stages.score import REJECTED_PREFIX

__all__ = ["make_pairs"]


def make_pairs(ctx: StageContext, scored: ScoredWorkflows, *, iteration: int) -> Pairs:
    """Pool every unequal pair of each task's scored workflows and draw ``num_pairs`` of them."""
    cfg = ctx.config
    samples = scored.samples()
    pool = build_pairs(s for s in samples if not (s.failure or "").startswith(REJECTED_PREFIX))
    pairs = sample_pairs(pool, cfg.num_pairs, gap_fn=cfg.gap_fn, seed=cfg.effective_pair_seed + iteration)
    stats = asdict(pair_stats(samples))
    stats["sampled_pairs"] = len(pairs)
    stage_dir = scored.path.parent
    write_jsonl(stage_dir / "pairs.jsonl", [p.to_dict() for p in pairs])
    write_json(stage_dir / "pair_stats.json", stats)
    return Pairs(path=stage_dir / "pairs.jsonl", n=len(pairs), stats=stats)
