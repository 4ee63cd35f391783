"""The training stage under Ray Train (``train_launcher: ray``): one iteration on a Ray cluster.

The loop's driver calls :func:`train_on_ray` where the local launcher would train in its own
process. Ray Train's ``TorchTrainer`` starts ``ray_train_workers`` workers (one GPU each with
``ray_train_use_gpu``, NCCL; else CPU workers, gloo) and sets up their process group and the
``RANK``/``WORLD_SIZE``/``LOCAL_RANK``/``MASTER_ADDR`` environment, which accelerate (and so
TRL's trainers) pick up as they do under ``accelerate launch``. Every worker:

1. rebuilds the config from the driver's field values (CPU workers get ``use_cpu=True``),
2. runs :func:`sf_train.training.run_training`, the code the local launcher runs, on the
   iteration's ``pairs.jsonl`` and ``scores.jsonl`` in the run directory: it rebuilds the model
   from disk (the base model from ``model_name_or_path``, local files only, plus the previous
   iteration's adapter, or a fresh seeded LoRA for iteration 0) and trains (DDP keeps the
   replicas equal),
3. and rank 0 alone saves ``iter-<i>/adapter`` (atomically, :func:`sf_train.modeling.save_adapter`)
   and writes ``iter-<i>/train.json``: the :class:`~sf_train.objectives.TrainResult` fields plus
   ``launcher``, ``world_size`` and ``workers`` (rank, host, pid, device, steps, whether it saved,
   gathered from every rank over the process group).

So the run directory, the base model and the Hugging Face cache must be on storage every worker
sees at the same path (docs/scale-out.md). Ray Train's own run state goes to
``iter-<i>/ray-train/`` in the run directory. Needs ``pip install "sf-train[ray]"``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import socket
from pathlib import Path
from typing import Any

from sf_train.errors import StageError

__all__ = ["TRAIN_FILE", "train_on_ray"]

TRAIN_FILE = "train.json"
"""What rank 0 writes in the iteration's directory when training is done."""


def _config_fields(config: Any) -> dict[str, Any]:
    """The config's init fields, as ``dataclasses.replace`` would pass them (so they rebuild it)."""
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(config) if f.init}


def train_on_ray(
    config: Any, *, stage_dir: Path, iteration: int, previous_adapter: Path | None
) -> dict[str, Any]:
    """Train iteration ``iteration`` with Ray Train; return what rank 0 wrote to ``train.json``.

    Ray must already be connected to the cluster (the loop connects to ``config.ray_address``).

    Args:
        config: The run's :class:`~sf_train.config.ScoreDPOConfig` (``ray_train_*`` fields).
        stage_dir: ``<output_dir>/iter-<i>``, holding ``scores.jsonl`` and ``pairs.jsonl``.
        iteration: ``i`` (seeds the SFT draw as in the local launcher).
        previous_adapter: The adapter to continue from; None = a fresh LoRA (iteration 0).

    Raises:
        MissingDependencyError: Ray Train (``ray[train]``) is not installed.
        StageError: a worker failed (its error is in the message), or training ended without
            ``train.json`` and an adapter.
    """
    from sf_train._imports import require

    require("ray.train.torch", extra="ray", purpose="train_launcher: ray")
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    stage_dir = stage_dir.resolve()
    use_gpu = bool(config.ray_train_use_gpu)
    resources: dict[str, float] = {"CPU": float(config.ray_train_cpus_per_worker)}
    if use_gpu:
        resources["GPU"] = 1.0
    payload = {
        "config": _config_fields(config),
        "stage_dir": str(stage_dir),
        "previous_adapter": str(previous_adapter.resolve()) if previous_adapter is not None else None,
        "seed": config.effective_pair_seed + iteration,
        "use_gpu": use_gpu,
    }
    storage = stage_dir / "ray-train"
    shutil.rmtree(storage, ignore_errors=True)  # a killed attempt's state must not be resumed
    (stage_dir / TRAIN_FILE).unlink(missing_ok=True)
    trainer = TorchTrainer(
        _train_worker,
        train_loop_config=payload,
        scaling_config=ScalingConfig(
            num_workers=config.ray_train_workers, use_gpu=use_gpu, resources_per_worker=resources
        ),
        run_config=RunConfig(name="train", storage_path=str(storage)),
    )
    try:
        trainer.fit()
    except Exception as exc:  # noqa: BLE001 - Ray wraps the worker's error; keep its message
        lines = [line for line in str(exc).splitlines() if line.strip()]
        tail = " | ".join(lines[-3:])[:1500]
        raise StageError(
            f"{stage_dir.name}: training under Ray Train failed ({type(exc).__name__}: {tail}); "
            "the iteration's pairs are kept: fix the cause and rerun to resume"
        ) from exc
    path = stage_dir / TRAIN_FILE
    if not path.exists() or not (stage_dir / "adapter" / "adapter_config.json").exists():
        raise StageError(f"{stage_dir.name}: Ray Train finished but rank 0 left no {TRAIN_FILE} and adapter")
    return dict(json.loads(path.read_text(encoding="utf-8")))


def _train_worker(payload: dict[str, Any]) -> None:
    """One Ray Train worker: rebuild, train, gather who took part; rank 0 saves (module docstring)."""
    import ray
    import torch.distributed as dist
    from ray import train

    from sf_train.config import ScoreDPOConfig
    from sf_train.modeling import save_adapter
    from sf_train.objectives import train_info
    from sf_train.run_files import write_json
    from sf_train.training import run_training

    context = train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    fields = dict(payload["config"])
    if not payload["use_gpu"]:
        fields["use_cpu"] = True
    config = ScoreDPOConfig(**fields)
    stage_dir = Path(payload["stage_dir"])
    training = run_training(
        config,
        pairs_file=stage_dir / "pairs.jsonl",
        samples_file=stage_dir / "scores.jsonl",
        output_dir=stage_dir / "trainer",
        seed=payload["seed"],
        previous_adapter=payload["previous_adapter"],
    )
    model, result = training.model, training.result
    me = {
        "rank": rank,
        "hostname": socket.gethostname(),
        "node_id": ray.get_runtime_context().get_node_id(),
        "pid": os.getpid(),
        "device": str(next(model.parameters()).device),
        "steps": result.steps if result is not None else 0,
        "saved_adapter": rank == 0,
    }
    workers: list[Any] = [None] * world
    if dist.is_available() and dist.is_initialized():
        dist.all_gather_object(workers, me)
    else:  # a single worker: no process group
        workers = [me]
    if rank == 0:
        save_adapter(model, stage_dir / "adapter")
        info = train_info(result, config.objective)
        info.update(launcher="ray", world_size=world, workers=workers)
        write_json(stage_dir / TRAIN_FILE, info)
    if dist.is_available() and dist.is_initialized():
        dist.barrier()  # nobody leaves before the adapter and train.json are on disk
