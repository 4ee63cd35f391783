"""sf-train: ScoreFlow's Score-DPO LoRA loop.

Generate k workflows per task with the current LoRA adapter, run and score them through
sf-bench and sf-workflows in the sandbox, build score-weighted preference pairs, train with
Score-DPO (or DPO, SFT-on-best, PPO), repeat.

``import sf_train`` is cheap: torch, transformers, trl and peft load only when a name that
needs them (``ScoreDPOConfig``, ``ScoreDPOTrainer``, ``run_loop``...) is first accessed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from sf_train.errors import (
    MissingDependencyError,
    MissingWeightsError,
    StageError,
    TrainConfigError,
    TrainError,
)
from sf_train.pairs import Pair, PairStats, ScoredSample, build_pairs, pair_stats, sample_pairs

if TYPE_CHECKING:
    from sf_train.config import GenerationBackend, Objective, ScoreDPOConfig
    from sf_train.generate.base import GenerationParams
    from sf_train.generate.hf import HFWorkflowGenerator
    from sf_train.generate.vllm import VLLMWorkflowGenerator
    from sf_train.trainer import ScoreDPOTrainer, ScoredPreferenceCollator

__version__ = "0.1.0"

_LAZY: dict[str, str] = {
    "ScoreDPOConfig": "sf_train.config",
    "Objective": "sf_train.config",
    "GenerationBackend": "sf_train.config",
    "ScoreDPOTrainer": "sf_train.trainer",
    "ScoredPreferenceCollator": "sf_train.trainer",
    "GenerationParams": "sf_train.generate.base",
    "HFWorkflowGenerator": "sf_train.generate.hf",
    "VLLMWorkflowGenerator": "sf_train.generate.vllm",
}

__all__ = [
    "GenerationBackend",
    "GenerationParams",
    "HFWorkflowGenerator",
    "MissingDependencyError",
    "MissingWeightsError",
    "Objective",
    "Pair",
    "PairStats",
    "ScoreDPOConfig",
    "ScoreDPOTrainer",
    "ScoredPreferenceCollator",
    "ScoredSample",
    "StageError",
    "TrainConfigError",
    "TrainError",
    "VLLMWorkflowGenerator",
    "build_pairs",
    "pair_stats",
    "sample_pairs",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'sf_train' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
