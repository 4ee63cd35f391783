r"""Score-DPO on a pairs file under ``accelerate launch``: one process or many (DDP, FSDP).

::

    accelerate launch [--config_file configs/accelerate/ddp_2gpu.yaml | --num_processes N --cpu] \
        -m sf_train.launch --pairs PAIRS.jsonl --model DIR --output DIR \
        [--objective score-dpo] [--seed 0] [--max-steps N] [--global-batch G] [--per-device-batch B] \
        [--log FILE] [--config FIELDS.yaml] [--sample-prompts PROMPTS.jsonl --sample-k 8]

Every process loads the base model from ``--model`` (local files only, nothing is downloaded),
attaches a fresh LoRA adapter seeded with ``--seed`` (the same on every process), and trains
:class:`~sf_train.trainer.ScoreDPOTrainer` on the pairs; the accelerate config decides how
(DDP, FSDP, or one process). The pairs file is JSONL with ``prompt``, ``chosen``, ``rejected``
(strings) and ``chosen_score``, ``rejected_score`` (numbers in [0, 1]), which is what
:meth:`sf_train.pairs.Pair.to_dict` writes (extra keys are ignored).

**Global batch.** One optimiser step sees ``per_device_batch × processes × grad_accum`` pairs.
With ``--global-batch G`` the gradient accumulation is derived from the process count
(``G / (per_device_batch × processes)``, which must divide), so a 1-process run and a
2-process run at the same ``G``, ``--seed`` and data draw the same pairs in each step: the data
order is one seeded permutation, split into per-device batches that go round-robin to the
processes; DDP averages the per-process mean losses, gradient accumulation averages the
micro-batch means, so both optimise the same objective and their loss curves agree up to
floating-point reduction order.

Outputs:

* ``--output``: the LoRA adapter (``adapter_config.json``, ``adapter_model.safetensors``, saved
  by the trainer so FSDP's sharded weights are gathered first) and the tokenizer; ``run.json``
  with the setup (processes, global batch, accumulation, backend, versions) and the result.
* ``--log`` (default ``<output>/log.jsonl``): one JSON line per optimiser step, written by
  process 0 only: ``step``, ``loss`` (the mean over the global batch, unrounded), the learning
  rate, gradient norm and TRL's reward/logp/score metrics.

* ``--sample-prompts``: after training, every process samples its share of the prompts with the
  trained adapter (:func:`sf_train.dp_generate.sample_to_file`: fixed chunks of
  ``generation_batch_size // k`` prompts, chunk ``j`` seeded ``seed + j``, round-robin over the
  processes, merged in prompt order) into ``<output>/samples.jsonl``; sampling settings are the
  config's (temperature, top_p, max_new_tokens, stop). Not under FSDP (the shards would have to
  step together): sample with ``-m sf_train.dp_generate --adapter OUTPUT`` instead.

Errors a user can fix (missing file, bad pair line, global batch not divisible, unknown config
field) print one line and exit 2; other :class:`~sf_train.errors.TrainError`\ s exit 1.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from sf_train._entry import run_entry_point
from sf_train.errors import TrainConfigError, TrainError
from sf_train.pairs import PAIR_FIELDS, read_pairs

__all__ = ["PAIR_FIELDS", "derive_accumulation", "main", "read_pairs", "train_pairs"]


def _world_size() -> int:
    """Processes in this launch (``WORLD_SIZE`` set by accelerate/torchrun; 1 when launched plainly)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").lower() in ("1", "true", "yes")


def _is_main() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def derive_accumulation(global_batch: int, per_device_batch: int, processes: int) -> int:
    """Gradient-accumulation steps that make one optimiser step see ``global_batch`` pairs.

    Raises:
        TrainConfigError: ``global_batch`` is not a positive multiple of ``per_device_batch × processes``.
    """
    unit = per_device_batch * processes
    if global_batch < 1 or global_batch % unit:
        raise TrainConfigError(
            f"--global-batch {global_batch} must be a positive multiple of per-device batch × processes "
            f"= {per_device_batch} × {processes} = {unit}; change --global-batch or --per-device-batch"
        )
    return global_batch // unit


def _load_yaml(path: str | None) -> dict[str, Any]:
    if path is None:
        return {}
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise TrainConfigError(f"cannot read config file {path!r}: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise TrainConfigError(f"config file {path!r} is not valid YAML: {str(exc).splitlines()[0]}") from exc
    if not isinstance(data, dict):
        raise TrainConfigError(f"config file {path!r} must hold a mapping of ScoreDPOConfig fields")
    return data


def _build_config(fields: dict[str, Any]) -> Any:
    import dataclasses

    from sf_train.config import ScoreDPOConfig

    known = {f.name for f in dataclasses.fields(ScoreDPOConfig) if f.init}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise TrainConfigError(f"unknown ScoreDPOConfig field(s): {', '.join(unknown)}")
    try:
        return ScoreDPOConfig(**fields)
    except TrainError:
        raise
    except (TypeError, ValueError) as exc:
        raise TrainConfigError(f"invalid training config: {str(exc).splitlines()[0]}") from exc


def _step_logger(path: Path) -> Any:
    from transformers import TrainerCallback

    class StepLog(TrainerCallback):
        """Append one JSON line per logged step (process 0 only; ``loss`` unrounded) to ``path``.

        It empties ``path`` (creating its folder) when training begins.
        """

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.is_world_process_zero:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text("", encoding="utf-8")

        def on_log(
            self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any
        ) -> None:
            if not state.is_world_process_zero or not logs or "loss" not in logs:
                return
            row = {
                "step": int(state.global_step),
                **{k: v for k, v in logs.items() if isinstance(v, int | float) and math.isfinite(v)},
            }
            with path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(row) + "\n")

    return StepLog()


def _launch_config(
    extra: dict[str, Any] | None,
    *,
    output: Path,
    model_dir: Path,
    objective: str,
    seed: int,
    max_steps: int,
    per_device_batch: int,
    grad_accum: int,
    gradient_checkpointing: bool | None,
) -> Any:
    """The launch's ScoreDPOConfig: ``extra`` (``--config``) under the explicit arguments."""
    import torch

    use_cpu = _env_flag("ACCELERATE_USE_CPU") or not torch.cuda.is_available()
    fields: dict[str, Any] = dict(extra or {})
    dtype = fields.get("dtype", "bfloat16")
    fields.setdefault("bf16", dtype == "bfloat16" and not use_cpu)
    fields.setdefault("fp16", dtype == "float16" and not use_cpu)
    fields.update(
        output_dir=str(output),
        model_name_or_path=str(model_dir),
        objective=objective,
        seed=seed,
        max_steps=max_steps,
        per_device_train_batch_size=per_device_batch,
        gradient_accumulation_steps=grad_accum,
        use_cpu=use_cpu,
        logging_steps=1,
        report_to="none",
        save_strategy="no",
        disable_tqdm=True,
    )
    fields.setdefault("dataset_num_proc", None)
    fields.setdefault("max_length", None)
    fields.setdefault("ddp_find_unused_parameters", False)
    if gradient_checkpointing is not None:
        fields["gradient_checkpointing"] = gradient_checkpointing
    if fields.get("gradient_checkpointing", True):
        # reentrant checkpointing breaks DDP with frozen inputs; non-reentrant is correct everywhere
        fields.setdefault("gradient_checkpointing_kwargs", {"use_reentrant": False})
    return _build_config(fields)


def train_pairs(
    *,
    pairs: str | Path,
    model: str | Path,
    output: str | Path,
    log: str | Path | None = None,
    objective: str = "score-dpo",
    seed: int = 0,
    max_steps: int = -1,
    global_batch: int | None = None,
    per_device_batch: int = 1,
    grad_accum: int | None = None,
    gradient_checkpointing: bool | None = None,
    extra: dict[str, Any] | None = None,
    sample_prompts: str | Path | None = None,
    sample_k: int = 8,
) -> dict[str, Any]:
    """Train a fresh LoRA adapter with Score-DPO (or DPO) on a pairs file, in this process group.

    Call it from every process of an ``accelerate launch`` (or from a plain process).

    Args:
        pairs: The pairs JSONL (see :func:`read_pairs`).
        model: Directory with the base model and tokenizer (local files only).
        output: Where the adapter, tokenizer and ``run.json`` go (created).
        log: Per-step JSONL log; default ``<output>/log.jsonl``. Replaced, not appended to.
        objective: ``"score-dpo"`` or ``"dpo"``.
        seed: Seed of the LoRA init, the data order and everything else random.
        max_steps: Optimiser steps; -1 = one epoch over the pairs.
        global_batch: Pairs per optimiser step over all processes; derives the accumulation.
        per_device_batch: Pairs per forward on each process.
        grad_accum: Explicit accumulation steps (only without ``global_batch``); default 1.
        gradient_checkpointing: Override the config's (TRL's default: on).
        extra: More ``ScoreDPOConfig`` fields (from ``--config``); the explicit arguments win.
        sample_prompts: Prompts JSONL to sample ``sample_k`` completions each from after training.
        sample_k: Completions per prompt.

    Returns:
        The ``run.json`` contents (on every process; only process 0 writes files).

    Raises:
        TrainConfigError: bad pairs file, batch arithmetic, config field or missing weights.
    """
    grad_accum = _accumulation(global_batch, grad_accum, per_device_batch)
    read_pairs(pairs)  # a bad file fails now, before any model is loaded
    prompts = _read_sample_prompts(sample_prompts, sample_k)
    model_dir = Path(model)
    if not model_dir.is_dir():
        raise TrainConfigError(f"--model {str(model_dir)!r} is not a directory (nothing is downloaded)")
    output = Path(output)
    log_path = Path(log) if log is not None else output / "log.jsonl"

    config = _launch_config(
        extra,
        output=output,
        model_dir=model_dir,
        objective=objective,
        seed=seed,
        max_steps=max_steps,
        per_device_batch=per_device_batch,
        grad_accum=grad_accum,
        gradient_checkpointing=gradient_checkpointing,
    )

    from sf_train.modeling import load_tokenizer
    from sf_train.trainer import ScoreDPOTrainer
    from sf_train.training import run_training

    tokenizer = load_tokenizer(config)
    training = run_training(
        config,
        tokenizer=tokenizer,
        pairs_file=pairs,
        output_dir=output,
        trainer_class=ScoreDPOTrainer,
        callbacks=[_step_logger(log_path)],
    )
    trainer, result = training.trainer, training.result
    if result is None:  # pragma: no cover - read_pairs refused an empty file above
        raise TrainConfigError(f"pairs file {str(pairs)!r} has no pairs")
    trainer.save_model(str(output))  # gathers FSDP shards; writes on process 0 only

    sampling = None
    if prompts is not None:
        sampling = _sample(trainer, tokenizer, config, prompts, sample_k, seed=seed, output=output)
    processes = trainer.accelerator.num_processes
    run = {
        "pairs": str(pairs),
        "model": str(model_dir),
        "objective": objective,
        "seed": seed,
        "processes": processes,
        "per_device_batch": per_device_batch,
        "grad_accum": grad_accum,
        "global_batch": per_device_batch * grad_accum * processes,
        **_outcome(trainer, result, log_path=log_path, sampling=sampling),
    }
    if trainer.accelerator.is_main_process:
        (output / "run.json").write_text(json.dumps(run, indent=2) + "\n", encoding="utf-8")
    trainer.accelerator.wait_for_everyone()
    return run


def _accumulation(global_batch: int | None, grad_accum: int | None, per_device_batch: int) -> int:
    """The gradient-accumulation steps of the launch (see :func:`train_pairs`).

    Raises:
        TrainConfigError: both or bad batch settings.
    """
    if global_batch is not None:
        if grad_accum is not None:
            raise TrainConfigError("give --global-batch or --grad-accum, not both")
        grad_accum = derive_accumulation(global_batch, per_device_batch, _world_size())
    grad_accum = grad_accum or 1
    if per_device_batch < 1 or grad_accum < 1:
        raise TrainConfigError("--per-device-batch and --grad-accum must be at least 1")
    return grad_accum


def _read_sample_prompts(sample_prompts: str | Path | None, sample_k: int) -> list[str] | None:
    """The prompts to sample after training (None: no sampling); checked before any model loads.

    Raises:
        TrainConfigError: sampling under FSDP, ``sample_k`` < 1, or a bad prompts file.
    """
    if sample_prompts is None:
        return None
    from sf_train.dp_generate import read_prompts

    if _env_flag("ACCELERATE_USE_FSDP"):
        raise TrainConfigError(
            "--sample-prompts is not supported under FSDP: sample afterwards with "
            "`accelerate launch -m sf_train.dp_generate --adapter OUTPUT ...`"
        )
    if sample_k < 1:
        raise TrainConfigError("--sample-k must be at least 1")
    return read_prompts(sample_prompts)


def _sample(
    trainer: Any, tokenizer: Any, config: Any, prompts: list[str], k: int, *, seed: int, output: Path
) -> dict[str, Any]:
    """Sample ``k`` completions per prompt with the trained adapter into ``output/samples.jsonl``."""
    from sf_train.dp_generate import sample_to_file
    from sf_train.generate.base import GenerationParams
    from sf_train.generate.hf import HFWorkflowGenerator

    generator = HFWorkflowGenerator(trainer.model, tokenizer, GenerationParams.from_config(config))
    return sample_to_file(
        generator,
        prompts,
        k,
        seed=seed,
        chunk_prompts=max(1, config.generation_batch_size // k),
        output=output / "samples.jsonl",
        rank=trainer.accelerator.process_index,
        world=trainer.accelerator.num_processes,
    )


def _outcome(trainer: Any, result: Any, *, log_path: Path, sampling: Any) -> dict[str, Any]:
    """``run.json`` after the batch settings: the distributed setup, the result, the versions."""
    state = trainer.accelerator.state
    return {
        "distributed_type": str(state.distributed_type),
        "backend": getattr(state, "backend", None),
        "device": str(trainer.accelerator.device),
        "steps": result.steps,
        "train_loss": result.train_loss,
        "train_seconds": round(result.seconds, 3),
        "log": str(log_path),
        "sampling": sampling,
        "versions": _versions(),
        "fsdp_mixed_precision_policy": repr(
            getattr(getattr(state, "fsdp_plugin", None), "mixed_precision_policy", None)
        ),
    }


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for dist in ("torch", "transformers", "trl", "peft", "accelerate"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:  # pragma: no cover - all are dependencies
            out[dist] = "missing"
    return out


@click.command(name="launch", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--pairs", required=True, type=click.Path(dir_okay=False), help="Pairs JSONL file.")
@click.option("--model", required=True, type=click.Path(), help="Base model directory (local files only).")
@click.option("--output", required=True, type=click.Path(file_okay=False), help="Adapter output directory.")
@click.option("--objective", default="score-dpo", show_default=True, type=click.Choice(["score-dpo", "dpo"]))
@click.option("--seed", default=0, show_default=True, type=int, help="LoRA init, data order, everything.")
@click.option("--max-steps", default=-1, show_default=True, type=int, help="Optimiser steps; -1 = one epoch.")
@click.option("--global-batch", type=int, default=None, help="Pairs per optimiser step over all processes.")
@click.option(
    "--per-device-batch", default=1, show_default=True, type=int, help="Pairs per forward per process."
)
@click.option("--grad-accum", type=int, default=None, help="Accumulation steps (instead of --global-batch).")
@click.option(
    "--gradient-checkpointing/--no-gradient-checkpointing",
    default=None,
    help="Override the config (TRL's default: on).",
)
@click.option(
    "--log", type=click.Path(dir_okay=False), default=None, help="Per-step JSONL (default OUTPUT/log.jsonl)."
)
@click.option(
    "--sample-prompts",
    type=click.Path(dir_okay=False),
    default=None,
    help="After training, sample from these prompts (JSONL `prompt`) into OUTPUT/samples.jsonl.",
)
@click.option("--sample-k", default=8, show_default=True, type=int, help="Samples per prompt.")
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="YAML of further ScoreDPOConfig fields (learning_rate, beta, lora_r, dtype, ...).",
)
def launch_command(
    pairs: str,
    model: str,
    output: str,
    objective: str,
    seed: int,
    max_steps: int,
    global_batch: int | None,
    per_device_batch: int,
    grad_accum: int | None,
    gradient_checkpointing: bool | None,
    log: str | None,
    sample_prompts: str | None,
    sample_k: int,
    config_file: str | None,
) -> None:
    """Train a LoRA adapter with Score-DPO on PAIRS (run it under `accelerate launch -m sf_train.launch`)."""
    run = train_pairs(
        pairs=pairs,
        model=model,
        output=output,
        log=log,
        objective=objective,
        seed=seed,
        max_steps=max_steps,
        global_batch=global_batch,
        per_device_batch=per_device_batch,
        grad_accum=grad_accum,
        gradient_checkpointing=gradient_checkpointing,
        extra=_load_yaml(config_file),
        sample_prompts=sample_prompts,
        sample_k=sample_k,
    )
    if _is_main():
        click.echo(
            json.dumps(
                {
                    k: run[k]
                    for k in (
                        "processes",
                        "global_batch",
                        "grad_accum",
                        "steps",
                        "train_loss",
                        "train_seconds",
                        "distributed_type",
                    )
                }
            )
        )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; return the exit code (0 ok, 1 training error, 2 usage or config error)."""
    return run_entry_point(launch_command, argv, "sf_train.launch")


if __name__ == "__main__":
    sys.exit(main())
