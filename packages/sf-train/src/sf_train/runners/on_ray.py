"""Running stages on a Ray cluster (``sf-train[ray]``, docs/scale-out.md).

* :class:`RayCluster`: the run's connection to ``config.ray_address`` (``ray.init`` once; shut
  down at the end when this run made it) and its :class:`~sf_sandbox.ray_pool.RayPool`, one warm
  pool per node, started at the first scoring stage and kept for the whole run.
* :class:`RaySandboxes`: a scoring stage's workflows in those pools; each node answers its jobs'
  operator calls with an executor built there (:func:`sf_workflows.remote_host`).
* :class:`RayTraining`: a training stage under Ray Train (:func:`sf_train.ray_train.train_on_ray`).

Ray is imported only when one of these is used.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

from sf_train.config import ScoreDPOConfig
from sf_train.errors import TrainConfigError
from sf_train.policy import Policy
from sf_train.stages.context import Reporter
from sf_train.stages.train import TrainingJob

__all__ = ["RayCluster", "RaySandboxes", "RayTraining"]


class RayCluster:
    """The run's Ray connection and sandbox pools.

    Args:
        config: The run's config (``ray_address``, ``ray_pool_size``, ``sandbox_image``,
            ``executor_*``).
        out: The run directory (the default executor cache lies below it).
        report: Progress lines.
        given_executor: The executor given to ``run_loop`` (pickled to the nodes), or None to
            build one per node from the ``executor_*`` fields.
    """

    def __init__(self, config: ScoreDPOConfig, out: Path, report: Reporter, given_executor: Any) -> None:
        """See the class docstring."""
        self.config = config
        self.out = out
        self.report = report
        self.given_executor = given_executor
        self._pool: Any = None
        self._owns_ray = False

    def connect(self) -> Any:
        """The ``ray`` module, connected to ``config.ray_address`` (once per run).

        Raises:
            MissingDependencyError: Ray is not installed.
            TrainConfigError: the cluster cannot be joined.
        """
        from sf_train._imports import require

        ray = require("ray", extra="ray", purpose="ray_address / train_launcher: ray")
        if not ray.is_initialized():
            address = self.config.ray_address
            try:
                ray.init(
                    address=None if address == "local" else address,
                    logging_level="warning",
                    log_to_driver=False,
                )
            except (ConnectionError, ValueError, RuntimeError) as exc:
                raise TrainConfigError(
                    f"cannot join the Ray cluster at {address!r}: {exc} (start one with `ray start --head`, "
                    "or give its HEAD_IP:PORT with --ray)"
                ) from None
            self._owns_ray = True
        return ray

    def pool(self) -> Any:
        """The run's started RayPool.

        One warm pool per node, each node answering its jobs' operator calls with its own executor.
        """
        if self._pool is None:
            import dataclasses

            from sf_sandbox.ray_pool import RayPool
            from sf_workflows import remote_host, runtime_preload

            self.connect()
            pool = RayPool(  # the nodes run docker whatever sandbox_backend says (as always)
                dataclasses.replace(
                    self.config.sandbox_settings, backend="docker", pool_size=self.config.ray_pool_size
                ),
                node_host=remote_host(self._node_executor()),
                preload=runtime_preload(),
            )
            pool.start()
            self._pool = pool
            nodes = ", ".join(f"{n.short_id} ({n.address}, {n.pool_size} containers)" for n in pool.nodes)
            self.report(f"ray: workflows run on {len(pool.nodes)} node(s): {nodes}")
            for node_id, why in pool.report.skipped.items():
                self.report(f"ray: node {node_id[:8]} not used: {why}")
        return self._pool

    def _node_executor(self) -> Any:
        """What each node builds its executor from.

        The executor given to run_loop (it must pickle), else an ExecutorConfig from the
        ``executor_*`` fields without the key.
        """
        if self.given_executor is not None:
            from ray.cloudpickle.cloudpickle import dumps

            try:
                dumps(self.given_executor)
            except Exception as exc:  # noqa: BLE001 - any pickling failure means the same thing
                raise TrainConfigError(
                    "ray_address: the executor given to run_loop must pickle to run on the Ray nodes "
                    f"({type(exc).__name__}: {exc}); pass none to build one per node from the "
                    "executor_* fields"
                ) from None
            return self.given_executor
        from sf_train.executor import node_executor_config

        return node_executor_config(self.config, self.out)

    def close(self) -> None:
        """Close the pools (reporting their jobs per node) and disconnect if this run connected."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()
            for line in pool.report.format().splitlines():
                self.report(line)
        if self._owns_ray:
            import ray

            ray.shutdown()
            self._owns_ray = False


class RaySandboxes:
    """A scoring stage's workflows in the cluster's pools (started at the first stage)."""

    def __init__(self, cluster: RayCluster) -> None:
        """See the class docstring."""
        self.cluster = cluster

    def prepare(self) -> None:
        """Start the run's pools if no stage did yet (reports the nodes used)."""
        self.cluster.pool()

    def open(self) -> AbstractAsyncContextManager[tuple[Any, int]]:
        """The run's pool (left open for the next stage) and its live containers."""
        return self._open()

    @asynccontextmanager
    async def _open(self) -> AsyncIterator[tuple[Any, int]]:
        pool = self.cluster.pool()
        yield pool, sum(n.pool_size for n in pool.nodes if not n.lost)


class RayTraining:
    """Training under Ray Train's ``TorchTrainer`` with ``ray_train_workers`` workers.

    The driver's policy is marked stale, so it reloads the adapter from disk when it next generates.
    """

    def __init__(self, config: ScoreDPOConfig, cluster: RayCluster, policy: Policy) -> None:
        """See the class docstring."""
        self.config = config
        self.cluster = cluster
        self.policy = policy

    def describe(self) -> str:
        """The progress line names Ray Train and the workers."""
        return f" under Ray Train, {self.config.ray_train_workers} worker(s)"

    def train(self, job: TrainingJob) -> Mapping[str, Any]:
        """See :class:`~sf_train.stages.train.TrainingLauncher` and :mod:`sf_train.ray_train`."""
        from sf_train.ray_train import train_on_ray

        self.cluster.connect()
        info = train_on_ray(
            self.config, stage_dir=job.stage_dir, iteration=job.iteration, previous_adapter=job.previous
        )
        self.policy.stale()  # the adapter on disk is newer than any model in memory
        return info
