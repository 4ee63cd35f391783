"""One training iteration per objective, all on the same scored samples and all with LoRA.

* ``score-dpo``: :class:`~sf_train.trainer.ScoreDPOTrainer` on the N sampled pairs.
* ``dpo``: the same trainer and pairs, plain DPO loss (scores only choose the winner).
* ``sft-on-best``: TRL's ``SFTTrainer`` (completion-only loss) on each task's best-scoring
  workflow (score > 0; ties go to the lowest sample index), drawn with replacement up to
  ``sft_examples`` (default N) examples so that every objective takes as many optimiser steps.
* ``ppo``: TRL removed its ``PPOTrainer`` (value-head PPO) in 2026 (huggingface/trl#7020), so
  this objective is TRL's ``GRPOTrainer``: PPO's clipped-ratio surrogate with the group mean
  of the task's k scores as baseline instead of a learned critic. It trains on the samples
  and scores of this iteration, fed through GRPO's ``rollout_func`` (no new generation, no
  new executions), one group of k per step.

Each objective is one builder in :data:`BUILDERS` (model, tokenizer, config, this iteration's
samples and pairs → the trainer and its example count); :func:`run_trainer` trains it (the
``PeftModel`` in place) and returns a :class:`TrainResult`. The loop, ``sf_train.launch`` and the
Ray Train worker all go through :func:`sf_train.training.run_training`, which uses them.
"""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sf_train.config import Objective, ScoreDPOConfig
from sf_train.errors import TrainError
from sf_train.pairs import PAIR_FIELDS, Pair, ScoredSample

__all__ = [
    "BUILDERS",
    "TrainResult",
    "TrainerBuilder",
    "TrainerInputs",
    "best_samples",
    "build_trainer",
    "pair_rows",
    "run_trainer",
    "train_info",
    "train_objective",
]

_SHARED_FIELDS = (
    "learning_rate",
    "num_train_epochs",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "seed",
    "data_seed",
    "bf16",
    "fp16",
    "use_cpu",
    "gradient_checkpointing",
    "gradient_checkpointing_kwargs",
    "logging_steps",
    "lr_scheduler_type",
    "lr_scheduler_kwargs",
    "warmup_steps",
    "optim",
    "weight_decay",
    "adam_beta1",
    "adam_beta2",
    "adam_epsilon",
    "max_grad_norm",
    "report_to",
    "disable_tqdm",
    "max_steps",
    "dataloader_num_workers",
    "ddp_find_unused_parameters",
    "fsdp",
    "fsdp_config",
    "deepspeed",
    "disable_dropout",
    "model_init_kwargs",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class TrainResult:
    """What one iteration's training did."""

    objective: str
    examples: int
    """Training examples (pairs, SFT examples or PPO groups × k)."""
    steps: int
    seconds: float
    """Wall-clock seconds of ``trainer.train()``."""
    device_seconds: float
    """``seconds`` × processes (GPUs under ``accelerate launch``; 1 on CPU)."""
    train_loss: float | None
    trainer: str | None = None
    """The trainer class that ran (e.g. ``FastScoreDPOTrainer`` under ``fast_trainer``)."""
    log_history: list[dict[str, Any]] = field(default_factory=list)


def _shared_kwargs(config: ScoreDPOConfig, output_dir: Path, target: type) -> dict[str, Any]:
    accepted = {f.name for f in dataclasses.fields(target) if f.init}
    kwargs = {
        name: getattr(config, name) for name in _SHARED_FIELDS if name in accepted and hasattr(config, name)
    }
    kwargs.update(output_dir=str(output_dir), save_strategy="no")
    return kwargs


def best_samples(samples: Sequence[ScoredSample]) -> list[ScoredSample]:
    """Each task's best-scoring sample with score > 0 (ties: lowest index), in task order."""
    best: dict[str, ScoredSample] = {}
    for s in samples:
        if s.score <= 0:
            continue
        cur = best.get(s.task_id)
        if cur is None or (s.score, -s.index) > (cur.score, -cur.index):
            best[s.task_id] = s
    return list(best.values())


def run_trainer(trainer: Any, objective: str, examples: int) -> TrainResult:
    """Train with ``trainer`` (its console progress callbacks removed) and time it."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.remove_callback(PrinterCallback)  # the loop reports progress itself
    trainer.remove_callback(ProgressCallback)
    start = time.perf_counter()
    output = trainer.train()
    seconds = time.perf_counter() - start
    processes = getattr(trainer.accelerator, "num_processes", 1)
    return TrainResult(
        objective=objective,
        examples=examples,
        steps=int(trainer.state.global_step),
        seconds=seconds,
        device_seconds=seconds * processes,
        train_loss=float(output.training_loss) if output is not None else None,
        trainer=type(trainer).__name__,
        log_history=list(trainer.state.log_history),
    )


def train_info(result: TrainResult | None, objective: str) -> dict[str, Any]:
    """What an iteration's ``train.json`` holds: the result's fields, or why nothing was trained."""
    if result is None:
        return {
            "objective": objective,
            "skipped": "nothing to train on",
            "steps": 0,
            "seconds": 0.0,
            "device_seconds": 0.0,
            "train_loss": None,
        }
    return dataclasses.asdict(result)


def dpo_trainer_class(config: ScoreDPOConfig, model: Any) -> type:
    """The trainer class of the score-dpo/dpo objectives under ``config.fast_trainer``.

    ``auto`` takes :class:`~sf_train.fast.FastScoreDPOTrainer` for one process on a CUDA GPU with a
    model it supports (:func:`sf_train.fast.dpo.check_supported`), else
    :class:`~sf_train.trainer.ScoreDPOTrainer`; ``on`` always the fast one (its errors name what it
    cannot run), ``off`` always the plain one. Both compute the same loss.
    """
    from sf_train.trainer import ScoreDPOTrainer

    if config.fast_trainer == "off":
        return ScoreDPOTrainer
    if config.fast_trainer == "auto":
        from accelerate import PartialState

        from sf_train.modeling import device_for

        if device_for(config) == "cpu" or PartialState().num_processes > 1:
            return ScoreDPOTrainer
        from sf_train.errors import TrainConfigError
        from sf_train.fast.dpo import check_supported

        try:
            check_supported(model)
        except TrainConfigError:
            return ScoreDPOTrainer
    from sf_train.fast import FastScoreDPOTrainer

    return FastScoreDPOTrainer


@dataclass(frozen=True, slots=True, kw_only=True)
class TrainerInputs:
    """Everything a trainer builder gets: the policy and one iteration's data."""

    model: Any
    """The policy (a ``PeftModel``, its LoRA adapter trainable); trained in place."""
    tokenizer: Any
    config: ScoreDPOConfig
    samples: Sequence[ScoredSample]
    """This iteration's scored samples (``scores.jsonl``)."""
    pair_rows: Sequence[dict[str, Any]]
    """This iteration's pairs as the DPO trainers read them (:data:`~sf_train.pairs.PAIR_FIELDS`)."""
    output_dir: Path
    """The trainer's scratch directory."""
    seed: int | None = None
    """Seed of a data draw (SFT-on-best; default ``config.effective_pair_seed``)."""
    trainer_class: type | None = None
    """Overrides the objective's trainer class."""


TrainerBuilder = Callable[[TrainerInputs], "tuple[Any, int] | None"]
"""Builds one objective's trainer: inputs → (the trainer, its training examples), or None when
there is nothing to train on. Registered in :data:`BUILDERS` under its
:class:`~sf_train.config.Objective`."""


def _dpo_trainer(inputs: TrainerInputs) -> tuple[Any, int] | None:
    """score-dpo and dpo: :func:`dpo_trainer_class`'s trainer on the sampled pairs."""
    from datasets import Dataset

    model, config, pair_rows = inputs.model, inputs.config, inputs.pair_rows
    if not pair_rows:
        return None
    trainer_class = inputs.trainer_class or dpo_trainer_class(config, model)
    args = dataclasses.replace(config, output_dir=str(inputs.output_dir), save_strategy="no")
    args.from_profile = dict(config.from_profile)  # what the profile supplied, as in config.json
    trainer = trainer_class(
        model, args=args, train_dataset=Dataset.from_list(list(pair_rows)), processing_class=inputs.tokenizer
    )
    return trainer, len(pair_rows)


def _sft_on_best_trainer(inputs: TrainerInputs) -> tuple[Any, int] | None:
    """sft-on-best: TRL's SFTTrainer on ``sft_examples`` draws from each task's best workflow."""
    from datasets import Dataset

    config, seed = inputs.config, inputs.seed
    best = best_samples(inputs.samples)
    if not best:
        return None
    from trl.trainer.sft_config import SFTConfig
    from trl.trainer.sft_trainer import SFTTrainer

    n = config.sft_examples or config.num_pairs
    rng = random.Random(config.effective_pair_seed if seed is None else seed)
    drawn = rng.choices(best, k=n)
    rows = [{"prompt": s.prompt, "completion": s.completion} for s in drawn]
    args = SFTConfig(
        **_shared_kwargs(config, inputs.output_dir, SFTConfig),
        max_length=config.max_length,
        completion_only_loss=True,
        packing=False,
    )
    trainer = (inputs.trainer_class or SFTTrainer)(
        inputs.model, args=args, train_dataset=Dataset.from_list(rows), processing_class=inputs.tokenizer
    )
    return trainer, len(rows)


def build_trainer(
    model: Any,
    tokenizer: Any,
    config: ScoreDPOConfig,
    *,
    samples: Sequence[ScoredSample],
    pair_rows: Sequence[dict[str, Any]],
    output_dir: str | Path,
    seed: int | None = None,
    trainer_class: type | None = None,
) -> tuple[Any, int] | None:
    """The trainer of ``config.objective`` for one iteration, and how many examples it trains on.

    Args:
        model: The policy with its trainable LoRA adapter (trained in place).
        tokenizer: Its tokenizer.
        config: The run's config (objective, hyperparameters).
        samples: This iteration's scored samples (SFT-on-best and PPO train on them).
        pair_rows: This iteration's pairs as the trainer reads them (``prompt``, ``chosen``,
            ``rejected``, ``chosen_score``, ``rejected_score``; Score-DPO and DPO train on them).
        output_dir: Scratch directory for the trainer.
        seed: Seed for the SFT example draw (default ``config.effective_pair_seed``).
        trainer_class: Overrides the objective's trainer class (``sf_train.launch`` always takes
            :class:`~sf_train.trainer.ScoreDPOTrainer`).

    Returns:
        (trainer, examples), or None when there is nothing to train on.
    """
    builder = BUILDERS.get(Objective(config.objective))
    if builder is None:  # pragma: no cover - config validates the objective
        raise TrainError(f"unknown objective {config.objective!r}")
    return builder(
        TrainerInputs(
            model=model,
            tokenizer=tokenizer,
            config=config,
            samples=samples,
            pair_rows=pair_rows,
            output_dir=Path(output_dir),
            seed=seed,
            trainer_class=trainer_class,
        )
    )


def pair_rows(pairs: Sequence[Pair]) -> list[dict[str, Any]]:
    """The pairs as the DPO trainers read them (the columns of :data:`sf_train.pairs.PAIR_FIELDS`)."""
    return [{k: v for k, v in p.to_dict().items() if k in PAIR_FIELDS} for p in pairs]


def train_objective(
    model: Any,
    tokenizer: Any,
    config: ScoreDPOConfig,
    *,
    samples: Sequence[ScoredSample],
    pairs: Sequence[Pair],
    output_dir: str | Path,
    seed: int | None = None,
) -> TrainResult | None:
    """Train ``model`` (a ``PeftModel``) for one iteration with ``config.objective``, in memory.

    The loop's training stage reads its inputs from files instead
    (:func:`sf_train.training.run_training`); both build the trainer with :func:`build_trainer`.

    Args:
        model: The policy with its trainable LoRA adapter; trained in place.
        tokenizer: Its tokenizer.
        config: The run's config (objective, hyperparameters).
        samples: This iteration's scored samples (SFT-on-best and PPO train on them).
        pairs: This iteration's sampled pairs (Score-DPO and DPO train on them).
        output_dir: Scratch directory for the trainer.
        seed: Seed for the SFT example draw (default ``config.effective_pair_seed``).

    Returns:
        The result, or None when there is nothing to train on (no pairs, no sample above 0,
        or no task with unequal scores); the adapter is then left unchanged.
    """
    built = build_trainer(
        model,
        tokenizer,
        config,
        samples=samples,
        pair_rows=pair_rows(pairs),
        output_dir=output_dir,
        seed=seed,
    )
    if built is None:
        return None
    trainer, examples = built
    return run_trainer(trainer, config.objective, examples)


def _ppo_groups(samples: Sequence[ScoredSample]) -> tuple[dict[str, list[ScoredSample]], int]:
    """The samples by prompt, each group in sample order, and the group size k.

    Raises:
        TrainError: the tasks have different numbers of samples.
    """
    groups: dict[str, list[ScoredSample]] = {}
    for s in samples:
        groups.setdefault(s.prompt, []).append(s)
    for prompt in groups:
        groups[prompt].sort(key=lambda s: s.index)
    sizes = {len(g) for g in groups.values()}
    if len(sizes) != 1:
        raise TrainError(f"ppo needs the same number of samples per task, got sizes {sorted(sizes)}")
    return groups, sizes.pop()


def _ppo_rollout(
    groups: dict[str, list[ScoredSample]], k: int, tokenizer: Any
) -> Callable[[list[str], Any], dict[str, Any]]:
    """GRPO's ``rollout_func`` serving each prompt's already scored samples (no new generation).

    GRPO repeats each prompt k times in a row; the rollout serves that prompt's samples in order,
    with their scores in the ``sf_score`` column that :func:`_score_reward` returns as the reward.
    """

    def rollout(prompts: list[str], trainer: Any) -> dict[str, Any]:
        prompt_ids, completion_ids, scores = [], [], []
        seen: dict[str, int] = {}
        unique = len(prompts) != len(set(prompts))
        for prompt in prompts:
            group = groups[prompt]
            picks = [group[seen.get(prompt, 0) % k]] if unique else group
            seen[prompt] = seen.get(prompt, 0) + 1
            ids = tokenizer(prompt)["input_ids"]
            for s in picks:
                prompt_ids.append(ids)
                completion_ids.append(
                    tokenizer(s.completion, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
                )
                scores.append(float(s.score))
        return {
            "prompt_ids": prompt_ids,
            "completion_ids": completion_ids,
            "logprobs": None,
            "sf_score": scores,
        }

    return rollout


def _score_reward(
    prompts: list[str], completions: list[str], sf_score: list[float], **_: Any
) -> list[float | None]:
    """GRPO reward function: each sample's own score, as the rollout handed it on (``sf_score``)."""
    rewards: list[float | None] = list(sf_score)
    return rewards


_score_reward.__name__ = "sf_score"  # TRL names the reward's metrics after it (rewards/sf_score/...)


def _ppo_trainer(inputs: TrainerInputs) -> tuple[Any, int] | None:
    """ppo: TRL's GRPOTrainer on this iteration's samples and scores (no new generation)."""
    from datasets import Dataset
    from trl.trainer.grpo_config import GRPOConfig
    from trl.trainer.grpo_trainer import GRPOTrainer

    model, tokenizer, config, samples = inputs.model, inputs.tokenizer, inputs.config, inputs.samples
    groups, k = _ppo_groups(samples)
    # tasks whose k scores are all equal have zero advantage: they would only cost compute
    useful = [p for p, g in groups.items() if len({s.score for s in g}) > 1]
    if not useful:
        return None
    max_completion = max(
        len(tokenizer(s.completion, add_special_tokens=False)["input_ids"]) + 1 for s in samples
    )
    args = GRPOConfig(
        **{**_shared_kwargs(config, inputs.output_dir, GRPOConfig), "per_device_train_batch_size": k},
        num_generations=k,
        max_completion_length=max_completion,
        temperature=config.temperature if config.temperature > 0 else 1.0,
        top_p=config.top_p,
        beta=config.ppo_kl_coef,
        epsilon=config.ppo_clip_epsilon,
        log_completions=False,
    )
    import os

    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    trainer = (inputs.trainer_class or GRPOTrainer)(
        model,
        reward_funcs=[_score_reward],
        args=args,
        train_dataset=Dataset.from_list([{"prompt": p} for p in useful]),
        processing_class=tokenizer,
        rollout_func=_ppo_rollout(groups, k, tokenizer),
    )
    return trainer, len(useful) * k


BUILDERS: dict[Objective, TrainerBuilder] = {
    Objective.SCORE_DPO: _dpo_trainer,
    Objective.DPO: _dpo_trainer,
    Objective.SFT_ON_BEST: _sft_on_best_trainer,
    Objective.PPO: _ppo_trainer,
}
"""Each objective's trainer builder (README: "add an objective")."""
