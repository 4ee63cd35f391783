"""The ScoreFlow loop: M iterations of generate → score → pairs → train, then evaluation.

Run directory (``config.output_dir``)::

    config.json                 the config of the run (a resumed run must match its key fields)
    iter-<i>/samples.jsonl      generation: one line per task {task_id, prompt, completions[k]}
    iter-<i>/bench/             sf-bench records of every workflow run (resumable)
    iter-<i>/scores.jsonl       one ScoredSample per workflow (score = mean of runs, failures 0;
                                ``infra`` set where the endpoint/sandbox left it unscored: unpaired)
    iter-<i>/pairs.jsonl        the N sampled pairs; pair_stats.json: how the pool was built
    iter-<i>/adapter/           the LoRA adapter after training iteration i
    iter-<i>/train.json         trainer log (loss per step, steps, seconds)
    iter-<i>/metrics.json       the iteration's scores, pair counts, training and cost
    heldout-<i>/ ...            held-out evaluation with the adapter at the start of iteration i
                                (only with ``eval_each_iteration``)
    eval/ ...                   test-split evaluation with the final adapter
    metrics.jsonl               one line per iteration (what ``sf train report`` plots)
    summary.json                final numbers, total optimisation cost

Resumable at every stage after a kill: a stage whose output is complete is skipped;
generation continues with the tasks that have no samples yet; scoring continues with the
(problem, sample) pairs that have no record yet (sf-bench's resume); pairs are recomputed
(deterministic); an iteration whose adapter was not saved retrains from the previous saved
adapter. The model in memory is always rebuilt from what is on disk when resuming.

Under ``accelerate launch`` with several processes, generation and scoring run on the main
process only; every process then trains on the pairs file (DDP/FSDP/DeepSpeed as the
accelerate config says), and the main process saves the adapter.

This module is the driver: it sequences the stages (:mod:`sf_train.stages`, one module each,
handing on typed values that stand for the files each wrote) and owns resume (an iteration with
``metrics.json`` is done; :mod:`sf_train.resume` checks ``config.json``). Where a stage runs is
chosen here once, from the config (:mod:`sf_train.runners`): this machine's sandbox pool or a Ray
cluster's for scoring, this process group or Ray Train for training.

On a Ray cluster (``sf-train[ray]``, docs/scale-out.md), two stages move, as the config says:

* ``ray_address`` (``--ray auto|HOST:PORT|local``): the workflows run in the sandbox pools of
  the cluster's nodes (:class:`sf_sandbox.ray_pool.RayPool`, one warm pool per node, kept for
  the whole run) instead of this machine's pool. Each node answers its jobs' operator calls with
  an executor built there from the ``executor_*`` fields (:func:`sf_workflows.remote_host`; the
  key comes from ``executor_api_key_env`` in the node's environment, the response cache is
  ``executor_cache_dir``, which must be shared storage for resume to replay it on any node); an
  executor object given to :func:`run_loop` is pickled to the nodes instead. Records, scores,
  files and resume are those of a local run; the driver keeps doing generation, the harness and
  every file.
* ``train_launcher: ray``: each iteration trains under Ray Train's ``TorchTrainer`` with
  ``ray_train_workers`` workers (:mod:`sf_train.ray_train`): every worker rebuilds the model from
  disk (base + previous adapter) and reads the iteration's pairs and scores from the run
  directory, rank 0 saves ``iter-<i>/adapter`` and ``train.json`` (with ``world_size`` and the
  workers); the driver then goes on as with the local launcher and reloads the adapter from
  disk when it next generates. The run directory must be on storage every worker sees.

The loop connects to the cluster once (``ray.init``) and disconnects at the end when it made the
connection; Ray is imported only when ``ray_address`` is set.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sf_train.config import ScoreDPOConfig, TrainLauncher
from sf_train.errors import TrainConfigError
from sf_train.run_files import write_json, write_jsonl
from sf_train.stages.context import Reporter, StageContext
from sf_train.stages.score import REJECTED_PREFIX

__all__ = ["REJECTED_PREFIX", "LoopResult", "Reporter", "run_loop"]


@dataclass
class LoopResult:
    """What :func:`run_loop` returns (also written to ``summary.json``)."""

    output_dir: str
    iterations: list[dict[str, Any]] = field(default_factory=list)
    """The per-iteration metrics (``metrics.jsonl`` lines)."""
    heldout: list[dict[str, Any]] = field(default_factory=list)
    """Held-out evaluations (``eval_each_iteration``), one per iteration start, plus the final one."""
    eval: dict[str, Any] | None = None
    """The test-split evaluation with the final adapter."""
    cost: dict[str, float] = field(default_factory=dict)
    """Total optimisation cost over the iterations."""


class _Driver:
    """Sequences the stages of one run (module docstring); every stage's work is in its module."""

    def __init__(
        self,
        ctx: StageContext,
        *,
        train_problems: list[Any],
        eval_problems: list[Any] | None,
        executor: Any,
        model: Any,
        tokenizer: Any,
        eval_each_iteration: bool,
    ) -> None:
        from sf_train.policy import Policy
        from sf_train.runners.local import LocalSandboxes, LocalTraining
        from sf_train.runners.processes import Processes

        cfg = ctx.config
        self.ctx = ctx
        self.train_problems = train_problems
        self.eval_problems = eval_problems
        self.eval_each_iteration = eval_each_iteration
        self.processes = Processes()
        self.policy = Policy(cfg, model=model, tokenizer=tokenizer, prompt_fn=ctx.prompt_fn)
        self._executor = executor
        self.cluster: Any = None
        self.sandboxes: Any = LocalSandboxes(cfg)
        self.training: Any = LocalTraining(cfg, self.policy, self.processes, quiet=ctx.quiet)
        if cfg.ray_address is not None:
            from sf_train.runners.on_ray import RayCluster, RaySandboxes, RayTraining

            self.cluster = RayCluster(cfg, ctx.out, ctx.report, executor)
            self.sandboxes = RaySandboxes(self.cluster)
            if cfg.train_launcher == TrainLauncher.RAY:
                self.training = RayTraining(cfg, self.cluster, self.policy)

    @property
    def executor(self) -> Any:
        """The executor given to run_loop, else the default one (built on first use)."""
        if self._executor is None:
            from sf_train.executor import default_executor

            self._executor = default_executor(self.ctx.config, self.ctx.out)
        return self._executor

    def run(self) -> LoopResult:
        """Run or resume every stage; the Ray connection (if any) is closed however it ends."""
        if self.ctx.config.train_launcher == TrainLauncher.RAY and self.processes.count > 1:
            raise TrainConfigError(
                "train_launcher: ray starts its own training processes; run the loop as one process "
                "(not under accelerate launch)"
            )
        try:
            return self._run()
        finally:
            if self.cluster is not None:
                self.cluster.close()

    def _run(self) -> LoopResult:
        from sf_train.resume import check_run_config

        ctx, cfg, main = self.ctx, self.ctx.config, self.processes.is_main
        check_run_config(cfg, ctx.out, ctx.profile, write=main, report=ctx.report)
        result = LoopResult(output_dir=str(ctx.out))
        if main:
            _ = self.executor  # a missing key or endpoint fails now, before any generation
            if self.cluster is not None:
                self.cluster.connect()  # so does a missing Ray or an unreachable cluster
        previous: Path | None = None
        for i in range(cfg.iterations):
            stage_dir = ctx.out / f"iter-{i}"
            stage_dir.mkdir(parents=True, exist_ok=True)
            if self.eval_each_iteration and self.eval_problems and main:
                result.heldout.append(self._evaluate(f"heldout-{i}", previous, cfg.seed + 7919 * (i + 1)))
            metrics = self._iteration(i, stage_dir, previous)
            if metrics:  # the other processes keep only what earlier runs finished (as they read it)
                result.iterations.append(metrics)
            previous = stage_dir / "adapter"
        if main:
            if self.eval_each_iteration and self.eval_problems:
                seed = cfg.seed + 7919 * (cfg.iterations + 1)
                result.heldout.append(self._evaluate("heldout-final", previous, seed))
            if self.eval_problems:
                result.eval = self._evaluate("eval", previous, cfg.seed + 104_729)
            write_jsonl(ctx.out / "metrics.jsonl", result.iterations)
            result.cost = _total_cost(result.iterations)
            write_json(ctx.out / "summary.json", asdict(result))
        self.processes.wait()
        return result

    def _evaluate(self, name: str, adapter: Path | None, seed: int) -> dict[str, Any]:
        from sf_train.stages.evaluate import evaluate

        assert self.eval_problems is not None
        return dict(
            evaluate(
                self.ctx,
                name,
                self.eval_problems,
                adapter=adapter,
                seed=seed,
                sampler=self.policy.generator_for,
                executor=self.executor,
                sandboxes=self.sandboxes,
            ).metrics
        )

    def _iteration(self, i: int, stage_dir: Path, previous: Path | None) -> dict[str, Any]:
        """One iteration (its metrics): main generates, scores and pairs; every process trains."""
        import json

        from sf_train.stages.handoff import Pairs, ScoredWorkflows
        from sf_train.stages.train import train

        metrics_path = stage_dir / "metrics.json"
        if metrics_path.exists():
            metrics = json.loads(metrics_path.read_text(encoding="utf-8"))
            self.ctx.report(f"iter-{i}: done before (mean score {metrics['mean_score']:.3f}), skipping")
            return dict(metrics)
        main = self.processes.is_main
        prepared = self._prepare(i, stage_dir, previous) if main else None
        self.processes.wait()
        if prepared is None:  # the other processes pick the stage up from its files
            scored, pairs, gen_cost = ScoredWorkflows.read(stage_dir), Pairs.read(stage_dir), {}
        else:
            scored, pairs, gen_cost = prepared
        adapter = train(self.ctx, pairs, scored, iteration=i, previous=previous, launcher=self.training)
        metrics: dict[str, Any] = {}
        if main:
            metrics = _iteration_metrics(i, pairs, gen_cost, scored.cost, adapter.info, self.ctx.config)
            write_json(metrics_path, metrics)
            self.ctx.report(
                f"iter-{i}: trained {adapter.info.get('steps', 0)} steps, "
                f"loss {adapter.info.get('train_loss')!s}; adapter saved to {adapter.path}"
            )
        self.processes.wait()
        return metrics

    def _prepare(self, i: int, stage_dir: Path, previous: Path | None) -> tuple[Any, Any, dict[str, float]]:
        """Generate, score and pair iteration ``i`` (main process): (scored, pairs, generation cost)."""
        from sf_train.stages.generate import generate
        from sf_train.stages.pairs import make_pairs
        from sf_train.stages.score import score

        ctx, cfg = self.ctx, self.ctx.config
        problems = self.train_problems
        generated = generate(
            ctx,
            stage_dir,
            problems,
            k=cfg.k,
            adapter=previous,
            seed=cfg.seed + i,
            sampler=self.policy.generator_for,
        )
        scored = score(
            ctx, generated, problems, tag=f"iter-{i}", executor=self.executor, sandboxes=self.sandboxes
        )
        pairs = make_pairs(ctx, scored, iteration=i)
        stats, retried = pairs.stats, scored.cost.get("executor_failed_attempts")
        ctx.report(
            f"iter-{i}: mean score {stats['mean_score']:.3f}, {stats['failed_samples']} failed, "
            f"{stats['infra_failed_samples']} unscored by endpoint/sandbox failures (not paired), "
            f"{stats['pool_pairs']} pairs in the pool, {pairs.n} sampled"
            + (f"; {int(retried)} executor calls failed and were retried" if retried else "")
        )
        return scored, pairs, dict(generated.cost)


def _iteration_metrics(
    i: int,
    pairs: Any,
    gen_cost: dict[str, float],
    score_cost: Any,
    train: Any,
    config: ScoreDPOConfig,
) -> dict[str, Any]:
    """An iteration's ``metrics.json`` (and ``metrics.jsonl`` line): scores, pairs, training, cost."""
    from sf_train.policy import generator_devices

    cost = {
        **gen_cost,
        **score_cost,
        "generator_device_seconds": gen_cost.get("generator_seconds", 0.0) * generator_devices(config),
        "trainer_device_seconds": float(train.get("device_seconds", 0.0)),
    }
    return {
        "iteration": i,
        **pairs.stats,
        "train": {k: v for k, v in train.items() if k != "log_history"},
        "train_losses": [h["loss"] for h in train.get("log_history", []) if "loss" in h],
        "cost": cost,
    }


def _total_cost(iterations: Sequence[dict[str, Any]]) -> dict[str, float]:
    total: dict[str, float] = {}
    for it in iterations:
        for key, value in it.get("cost", {}).items():
            if isinstance(value, int | float):
                total[key] = total.get(key, 0.0) + float(value)
    return total


def _load_split(config: ScoreDPOConfig, split: str) -> list[Any]:
    from sf_bench.datasets import load
    from sf_bench.errors import BenchError

    try:
        return load(config.dataset, split, data_dir=config.data_dir, limit=config.limit)
    except BenchError as exc:
        raise TrainConfigError(f"cannot load {config.dataset}/{split}: {exc}") from exc


def run_loop(
    config: ScoreDPOConfig,
    *,
    train_problems: Sequence[Any] | None = None,
    eval_problems: Sequence[Any] | None = None,
    executor: Any = None,
    model: Any = None,
    tokenizer: Any = None,
    prompt_fn: Callable[[Any], str] | None = None,
    dataset_name: str | None = None,
    reporter: Reporter | None = None,
    eval_each_iteration: bool | None = None,
    quiet: bool = False,
) -> LoopResult:
    """Run (or resume) the whole loop described in the module docstring.

    Args:
        config: Every setting (see :class:`~sf_train.config.ScoreDPOConfig`).
        train_problems: Tasks that generate the preference data; default: ``config.dataset`` /
            ``config.train_split`` from sf-bench.
        eval_problems: Tasks evaluated at the end (and, with ``eval_each_iteration``, before
            every iteration); default: ``config.eval_split`` (None skips).
        executor: The LLM behind the operators; default: an ``sf_workflows.Executor`` from the
            config's ``executor_*`` fields (the API key comes from ``executor_api_key_env``).
            With ``ray_address`` the workflows' calls are answered on the nodes: a given
            executor is pickled to every node (it must pickle), the default one is rebuilt on
            each node from the same fields (the key from the node's environment).
        model: A base causal LM already in memory; default: loaded from
            ``config.model_name_or_path`` (local files only).
        tokenizer: Its tokenizer; default: loaded alongside.
        prompt_fn: Problem → generator prompt; default: the profile's (``generator_prompt``:
            ``sf_workflows.build_generator_prompt``, or ScoreFlow's byte for byte).
        dataset_name: sf-bench dataset name that selects the scorer (default ``config.dataset``).
        reporter: Receives progress lines (default: stderr with a timestamp; none when ``quiet``).
        eval_each_iteration: Also evaluate the eval tasks with the adapter at the start of every
            iteration and at the end (the held-out learning curve); default
            ``config.eval_each_iteration``.
        quiet: No progress bars, and no progress lines unless ``reporter`` is given
            (:mod:`sf_train.progress`).

    Returns:
        The metrics of every iteration, the evaluations and the total optimisation cost.

    Raises:
        TrainConfigError: bad settings, missing weights, unreadable data, an output_dir
            holding a different run, or a Ray cluster that cannot be joined.
        MissingDependencyError: ``ray_address`` or ``train_launcher: ray`` without Ray
            (``pip install "sf-train[ray]"``).
        StageError: scoring kept failing for infrastructure reasons (results so far are kept),
            or training under Ray Train failed.
        SandboxError: no Ray node could start a sandbox pool (each node's reason is given).
    """
    from sf_train.profiles import RunProfile
    from sf_train.progress import quiet_reporter, stderr_reporter

    train = list(train_problems) if train_problems is not None else _load_split(config, config.train_split)
    if eval_problems is None and config.eval_split:
        eval_problems = _load_split(config, config.eval_split)
    dataset = dataset_name or config.dataset
    profile = RunProfile(config, dataset)
    ctx = StageContext(
        config=config,
        out=Path(config.output_dir or "sf-train-output"),
        report=reporter or (quiet_reporter if quiet else stderr_reporter()),
        profile=profile,
        dataset=dataset,
        prompt_fn=prompt_fn or profile.prompt,
        quiet=quiet,
    )
    driver = _Driver(
        ctx,
        train_problems=train,
        eval_problems=list(eval_problems) if eval_problems is not None else None,
        executor=executor,
        model=model,
        tokenizer=tokenizer,
        eval_each_iteration=config.eval_each_iteration
        if eval_each_iteration is None
        else eval_each_iteration,
    )
    return driver.run()
