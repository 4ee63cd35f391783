"""The Ray section of :class:`~sf_train.config.ScoreDPOConfig` (``sf-train[ray]``; docs/scale-out.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from sf_train.config_fields import help_text as _help

__all__ = ["RayFields", "TrainLauncher"]


class TrainLauncher(StrEnum):
    """Where the training stage of an iteration runs."""

    LOCAL = "local"
    """In the loop's own process(es): one process, or every process of ``accelerate launch``."""
    RAY = "ray"
    """Ray Train's ``TorchTrainer`` on the cluster of ``ray_address`` (``ray_train_workers`` workers)."""


@dataclass
class RayFields:
    """Workflows on a Ray cluster's nodes; training under Ray Train."""

    ray_address: str | None = field(
        default=None,
        metadata={
            "help": "Ray cluster whose nodes run the workflows (one warm sandbox pool per node, executor "
            "built on each node): 'auto' (the cluster `ray start` made here), 'HOST:PORT' (its head) or "
            "'local' (a one-node Ray on this machine); None = this machine's sandbox pool. Needs "
            "sf-train[ray]. Ours.",
            "aliases": ["--ray"],
        },
    )
    ray_pool_size: int | None = field(
        default=None,
        metadata=_help("Warm sandbox containers per Ray node; None = the node's CPU count in Ray."),
    )
    train_launcher: str = field(
        default="local",
        metadata={
            "help": "Where each iteration trains: 'local' (this process, or every process of accelerate "
            "launch) or 'ray' (Ray Train's TorchTrainer with ray_train_workers workers on the "
            "ray_address cluster; the run directory must be on storage every worker sees).",
            "choices": [t.value for t in TrainLauncher],
        },
    )
    ray_train_workers: int = field(
        default=1,
        metadata=_help("train_launcher=ray: training processes (one per GPU with ray_train_use_gpu)."),
    )
    ray_train_use_gpu: bool = field(
        default=False,
        metadata=_help("train_launcher=ray: one GPU per worker (NCCL); off = CPU workers (gloo)."),
    )
    ray_train_cpus_per_worker: float = field(
        default=1.0, metadata=_help("train_launcher=ray: CPUs Ray reserves for each training worker.")
    )
