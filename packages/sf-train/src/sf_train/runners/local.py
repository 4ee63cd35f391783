"""Running stages on this machine: its sandbox pool for scoring, its process group for training."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from sf_train.config import ScoreDPOConfig
from sf_train.objectives import train_info
from sf_train.policy import Policy
from sf_train.run_files import write_json
from sf_train.runners.processes import Processes
from sf_train.stages.train import TrainingJob

__all__ = ["LocalSandboxes", "LocalTraining"]


class LocalSandboxes:
    """A warm sandbox pool of this machine, opened for each scoring stage and closed after it.

    Configured by ``sandbox_image``, ``sandbox_pool_size`` and ``sandbox_backend``.
    """

    def __init__(self, config: ScoreDPOConfig) -> None:
        """See the class docstring."""
        self.config = config

    def prepare(self) -> None:
        """Nothing to set up before the stage: the pool starts when it is opened."""

    def open(self) -> AbstractAsyncContextManager[tuple[Any, int]]:
        """The stage's pool (entered inside its event loop) and its container count."""
        return self._open()

    @asynccontextmanager
    async def _open(self) -> AsyncIterator[tuple[Any, int]]:
        from sf_workflows import open_sandbox

        cfg = self.config
        async with open_sandbox(cfg.sandbox_settings) as sandbox:
            yield sandbox, cfg.sandbox_pool_size * cfg.sandbox_settings.jobs_per_container


class LocalTraining:
    """Training in this process group: the policy in memory trained in place on every process.

    DDP/FSDP/DeepSpeed as the accelerate config says; the main process saves the adapter and
    writes ``train.json``.
    """

    def __init__(
        self, config: ScoreDPOConfig, policy: Policy, processes: Processes, *, quiet: bool = False
    ) -> None:
        """See the class docstring; ``quiet``: no bar over the optimiser steps."""
        self.config = config
        self.policy = policy
        self.processes = processes
        self.quiet = quiet

    def describe(self) -> str:
        """Nothing to add to the progress line."""
        return ""

    def train(self, job: TrainingJob) -> Mapping[str, Any]:
        """Train the policy on the job's files; see :class:`~sf_train.stages.train.TrainingLauncher`."""
        from sf_train.modeling import save_adapter
        from sf_train.progress import step_bar
        from sf_train.training import run_training

        model = self.policy.model_for(job.previous)
        training = run_training(
            self.config,
            pairs_file=job.pairs.path,
            samples_file=job.scored.path,
            output_dir=job.stage_dir / "trainer",
            seed=self.config.effective_pair_seed + job.iteration,
            model=model,
            tokenizer=self.policy.tokenizer,
            callbacks=() if self.quiet else (step_bar(f"{job.stage_dir.name} training"),),
        )
        adapter = job.stage_dir / "adapter"
        if self.processes.is_main:
            save_adapter(model, adapter)
        self.processes.wait()
        self.policy.trained(adapter)
        info = train_info(training.result, self.config.objective)
        if self.processes.is_main:
            write_json(job.stage_dir / "train.json", info)
        return info
