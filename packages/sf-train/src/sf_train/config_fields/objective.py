"""The objective section of :class:`~sf_train.config.ScoreDPOConfig`: what one iteration trains."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from sf_train.config_fields import FROM_PROFILE
from sf_train.config_fields import help_text as _help
from sf_train.profiles import profile_help

__all__ = ["FAST_TRAINER", "Objective", "ObjectiveFields"]


class Objective(StrEnum):
    """The training objective of one iteration."""

    SCORE_DPO = "score-dpo"
    """ScoreFlow's Score-DPO: DPO whose log-ratio terms are weighted by f(s_w) and 1 − f(s_l)."""
    DPO = "dpo"
    """Plain DPO on the same sampled pairs (scores only pick the winner)."""
    SFT_ON_BEST = "sft-on-best"
    """Supervised fine-tuning on each task's best-scoring workflow."""
    PPO = "ppo"
    """Clipped-ratio policy optimisation on the scored samples (TRL's GRPOTrainer; see README)."""


FAST_TRAINER = ("auto", "on", "off")
"""Values of ``fast_trainer``."""


@dataclass
class ObjectiveFields:
    """The training objective, Score-DPO's f and d, the pair draw and the per-objective knobs."""

    objective: str = field(
        default="score-dpo",
        metadata={
            "help": "Training objective. [official: score-dpo]",
            "choices": [o.value for o in Objective],
        },
    )
    weight_fn: str = field(
        default="identity",
        metadata=_help(
            "f in Score-DPO's σ(β[f(s_w)·r_w − (1 − f(s_l))·r_l]): identity, square, sqrt, or "
            "'module:function' (must accept floats and torch tensors). [official: identity]"
        ),
    )
    gap_fn: str = field(
        default="cube",
        metadata=_help(
            "d(s_w, s_l), the pair sampling weight: cube ((s_w−s_l)^3), square, linear, uniform, or "
            "'module:function'. [official: cube, ScoreFlow evaluate.py]"
        ),
    )
    num_pairs: int = field(
        default=FROM_PROFILE,
        metadata=_help(
            "N: pairs drawn with replacement per iteration (ScoreFlow evaluate.py: 600 for HumanEval, "
            "else 2000). " + profile_help("num_pairs")
        ),
    )
    pair_seed: int | None = field(
        default=None,
        metadata=_help("Seed of the pair draw (iteration i uses pair_seed + i); None = `seed`."),
    )
    reference: str = field(
        default="base",
        metadata={
            "help": "Reference policy: 'base' = adapter disabled in every iteration [official]; "
            "'previous' = a frozen copy of the adapter as it was when the iteration started (TRL's default).",
            "choices": ["base", "previous"],
        },
    )
    fast_trainer: str = field(
        default="auto",
        metadata={
            "help": "score-dpo/dpo trainer: 'on' = FastScoreDPOTrainer (reference log-probs once per "
            "iteration, shared-prefix packed pairs, varlen attention, fused kernels; same loss); "
            "'off' = ScoreDPOTrainer (TRL's DPOTrainer with the score weighting); 'auto' = on for one "
            "process on a CUDA GPU with a model it supports, else off.",
            "choices": list(FAST_TRAINER),
        },
    )

    ppo_kl_coef: float = field(
        default=0.0,
        metadata=_help(
            "ppo objective: KL coefficient to the adapter-disabled reference (TRL GRPO's `beta`)."
        ),
    )
    ppo_clip_epsilon: float = field(
        default=0.2,
        metadata=_help("ppo objective: clipping range of the probability ratio (TRL's `epsilon`)."),
    )
    sft_examples: int | None = field(
        default=None,
        metadata=_help(
            "sft-on-best: examples drawn (with replacement) from the tasks' best workflows; "
            "None = num_pairs, "
            "so every objective takes the same number of optimiser steps on batch size 1."
        ),
    )
