"""One training stage from a config and a pairs file: the one way sf-train builds and runs a trainer.

:func:`run_training` is called by each launcher of a training stage: the loop's local launcher
(:mod:`sf_train.runners.local`, in this process or every process of ``accelerate launch``), every
Ray Train worker (:mod:`sf_train.ray_train`) and ``python -m sf_train.launch``. It reads the
iteration's pairs (and, for SFT-on-best and PPO, its scored samples), builds the policy unless one
is given (the base model from ``model_name_or_path`` plus the previous adapter, or a fresh seeded
LoRA), builds the objective's trainer (:func:`sf_train.objectives.build_trainer`) and trains it.
Saving the adapter stays with the caller, which knows who saves (rank 0, or the trainer itself
so that FSDP's shards are gathered).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sf_train.config import ScoreDPOConfig
from sf_train.objectives import TrainResult, build_trainer, run_trainer
from sf_train.pairs import ScoredSample, read_pairs
from sf_train.run_files import read_jsonl

__all__ = ["TrainingRun", "run_training"]


@dataclass(frozen=True, slots=True, kw_only=True)
class TrainingRun:
    """What :func:`run_training` did."""

    result: TrainResult | None
    """The training's result; None when there was nothing to train on (adapter unchanged)."""
    model: Any
    """The policy (a ``PeftModel``), trained in place."""
    trainer: Any
    """The trainer that ran (None with ``result``), for its accelerator and state."""


def run_training(
    config: ScoreDPOConfig,
    *,
    pairs_file: str | Path,
    samples_file: str | Path | None = None,
    output_dir: str | Path,
    seed: int | None = None,
    model: Any = None,
    tokenizer: Any = None,
    previous_adapter: str | Path | None = None,
    trainer_class: type | None = None,
    callbacks: Sequence[Any] = (),
) -> TrainingRun:
    """Train the policy for one stage with ``config.objective`` on the stage's files.

    Args:
        config: The run's config (objective, hyperparameters, model, LoRA).
        pairs_file: The pairs JSONL (:func:`sf_train.pairs.read_pairs`; may hold no pairs).
        samples_file: The stage's ``scores.jsonl`` (SFT-on-best and PPO train on it); None = none.
        output_dir: Scratch directory of the trainer.
        seed: Seed of the SFT example draw (default ``config.effective_pair_seed``).
        model: The policy in memory (a ``PeftModel``); default: the base model from disk with
            ``previous_adapter`` (or a fresh LoRA seeded with ``config.seed``).
        tokenizer: Its tokenizer; default: loaded from the config. Either way training tokenizes
            with the profile's BOS choice (:func:`sf_train.profiles.training_tokenizer`).
        previous_adapter: The adapter to continue from when ``model`` is not given.
        trainer_class: Overrides the objective's trainer class.
        callbacks: ``TrainerCallback`` objects added to the trainer.

    Raises:
        TrainConfigError: a bad pairs file.
        MissingWeightsError: the base model or tokenizer is not on disk.
    """
    from sf_train.modeling import attach_lora, load_base_model, load_tokenizer
    from sf_train.profiles import training_tokenizer

    rows = read_pairs(pairs_file, allow_empty=True)
    samples = [ScoredSample.from_dict(r) for r in read_jsonl(Path(samples_file))] if samples_file else []
    if tokenizer is None:
        tokenizer = load_tokenizer(config)
    if model is None:
        model = attach_lora(load_base_model(config), config, previous_adapter)
    built = build_trainer(
        model,
        training_tokenizer(tokenizer, bos=bool(config.train_bos_token)),
        config,
        samples=samples,
        pair_rows=rows,
        output_dir=output_dir,
        seed=seed,
        trainer_class=trainer_class,
    )
    if built is None:
        return TrainingRun(result=None, model=model, trainer=None)
    trainer, examples = built
    for callback in callbacks:
        trainer.add_callback(callback)
    fsdp2_fp32_outputs(trainer)
    return TrainingRun(result=run_trainer(trainer, config.objective, examples), model=model, trainer=trainer)


def fsdp2_fp32_outputs(trainer: Any) -> None:
    """Under FSDP2 with bf16 mixed precision, stop FSDP from casting the model's outputs to bf16.

    accelerate's default FSDP2 policy is ``MixedPrecisionPolicy(param_dtype=bf16,
    reduce_dtype=bf16, output_dtype=bf16)``. TRL's fused LM head returns per-token log-probs in
    fp32; DPO sums hundreds of them and takes policy − reference, and after the bf16 cast that
    difference rounds to 0. Measured on one H100 (tiny Llama, lr 1e-2, 8 steps): with the default
    policy the loss sat at bf16(log 2) = 0.691406 and differed from DDP's by up to 0.11; with
    ``output_dtype=None`` (no cast) the first two steps equal DDP's to all printed digits and the
    curve stays within 8.5e-4. ``reduce_dtype=float32`` crashed there (torch 2.11: ``FSDPParam``
    has no ``_unsharded_param``), so gradients are still reduced in bf16. Must run before
    ``trainer.train()``, which wraps the model. A no-op anywhere else.
    """
    import torch

    accelerator = getattr(trainer, "accelerator", None)
    plugin = getattr(getattr(accelerator, "state", None), "fsdp_plugin", None)
    if (
        accelerator is None
        or plugin is None
        or getattr(plugin, "fsdp_version", 1) != 2
        or accelerator.mixed_precision != "bf16"
    ):
        return
    from torch.distributed.fsdp import MixedPrecisionPolicy

    plugin.mixed_precision_policy = MixedPrecisionPolicy(
        param_dtype=torch.bfloat16, reduce_dtype=torch.bfloat16, output_dtype=None
    )
