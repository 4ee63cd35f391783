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

import asyncio
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sf_train.config import GenerationBackend, ScoreDPOConfig, TrainLauncher
from sf_train.errors import TrainConfigError
from sf_train.pairs import Pair, ScoredSample, build_pairs, pair_stats, sample_pairs
from sf_train.run_files import append_jsonl as _append_jsonl
from sf_train.run_files import read_jsonl as _read_jsonl
from sf_train.run_files import write_json as _write_json
from sf_train.run_files import write_jsonl as _write_jsonl

__all__ = ["LoopResult", "Reporter", "run_loop"]

Reporter = Callable[[str], None]
"""Receives one progress line at a time."""

REJECTED_PREFIX = "rejected: "
"""``ScoredSample.failure`` of a workflow the validity filters rejected (never scored or paired)."""

_KEY_FIELDS = (
    "model_name_or_path",
    "dataset",
    "train_split",
    "k",
    "runs_per_workflow",
    "objective",
    "weight_fn",
    "gap_fn",
    "num_pairs",
    "lora_r",
    "lora_alpha",
    "lora_target_modules",
    "seed",
    "pair_seed",
    "learning_rate",
    "beta",
    "temperature",
    "top_p",
    "max_new_tokens",
    "limit",
    "profile",
    "generator_prompt",
    "operator_prompts",
    "validity_filters",
    "answer_extraction",
    "train_bos_token",
)
"""Fields a resumed run must share with the run it continues."""


def _stderr_reporter(line: str) -> None:
    print(f"[sf-train {time.strftime('%H:%M:%S')}] {line}", file=sys.stderr, flush=True)


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


# ---------------------------------------------------------------------------------------------
# small file helpers


# ---------------------------------------------------------------------------------------------
# the loop


class _Loop:
    def __init__(
        self,
        config: ScoreDPOConfig,
        *,
        train_problems: Sequence[Any] | None,
        eval_problems: Sequence[Any] | None,
        executor: Any,
        model: Any,
        tokenizer: Any,
        prompt_fn: Callable[[Any], str] | None,
        dataset_name: str | None,
        reporter: Reporter | None,
        eval_each_iteration: bool,
    ) -> None:
        from accelerate import PartialState

        self.config = config
        self.out = Path(config.output_dir or "sf-train-output")
        self.report = reporter or _stderr_reporter
        self.state = PartialState()
        self.dataset = dataset_name or config.dataset
        self.train_problems = (
            list(train_problems) if train_problems is not None else self._load(config.train_split)
        )
        if eval_problems is not None:
            self.eval_problems: list[Any] | None = list(eval_problems)
        elif config.eval_split:
            self.eval_problems = self._load(config.eval_split)
        else:
            self.eval_problems = None
        self.eval_each_iteration = eval_each_iteration
        self._executor = executor
        self._executor_given = executor is not None
        self._ray_pool: Any = None
        self._owns_ray = False
        self._base_model = model
        self.tokenizer = tokenizer
        from sf_train.profiles import RunProfile

        self.profile = RunProfile(config, self.dataset)
        self.prompt_fn = prompt_fn or self.profile.prompt
        self.model: Any = None
        self._generator: Any = None
        self._adapter_loaded: Path | None | str = "none-yet"

    # --- set-up -------------------------------------------------------------------------
    def _load(self, split: str) -> list[Any]:
        from sf_bench.datasets import load
        from sf_bench.errors import BenchError

        try:
            return load(self.config.dataset, split, data_dir=self.config.data_dir, limit=self.config.limit)
        except BenchError as exc:
            raise TrainConfigError(f"cannot load {self.config.dataset}/{split}: {exc}") from exc

    def _check_config(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        path = self.out / "config.json"
        current = {k: getattr(self.config, k) for k in _KEY_FIELDS}
        if path.exists():
            saved = json.loads(path.read_text(encoding="utf-8")).get("key_fields", {})
            changed = {k: (saved.get(k), v) for k, v in current.items() if k in saved and saved[k] != v}
            if changed:
                what = ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in changed.items())
                raise TrainConfigError(
                    f"{self.out} holds a run with different settings ({what}); use another output_dir "
                    "or the same settings to resume it"
                )
        if self.state.is_main_process:
            profile = self.profile.describe()
            taken = ", ".join(f"{k}={v!r}" for k, v in profile["from_profile"].items())
            self.report(f"profile {profile['name']}: {taken or 'no defaults taken'} (config.json lists them)")
            _write_json(
                path,
                {
                    "key_fields": current,
                    "profile": self.profile.describe(),
                    "config": json.loads(self.config.to_json_string()),
                },
            )

    @property
    def executor(self) -> Any:
        if self._executor is None:
            self._executor = _default_executor(self.config, self.out)
        return self._executor

    def _ensure_model(self, adapter_dir: Path | None) -> None:
        """The policy in memory = base + the adapter saved in ``adapter_dir`` (fresh LoRA if None)."""
        from sf_train.modeling import attach_lora, load_base_model, load_tokenizer

        if self.model is not None and self._adapter_loaded == adapter_dir:
            return
        if self.tokenizer is None:
            self.tokenizer = load_tokenizer(self.config)
        if self.model is None:
            base = self._base_model if self._base_model is not None else load_base_model(self.config)
        else:
            base = self.model.unload()  # drop the in-memory adapter, keep the base weights
        self.model = attach_lora(base, self.config, adapter_dir)
        self._adapter_loaded = adapter_dir
        self._generator = None

    def _make_generator(self, adapter_dir: Path | None) -> Any:
        from sf_train.generate.base import GenerationParams

        cfg = self.config
        params = GenerationParams.from_config(cfg)
        if cfg.generation_backend == GenerationBackend.VLLM:
            from sf_train.generate.vllm import VLLMWorkflowGenerator

            if self._generator is None or not isinstance(self._generator, VLLMWorkflowGenerator):
                self._generator = VLLMWorkflowGenerator(
                    cfg.model_name_or_path,
                    params,
                    prompt_fn=self.prompt_fn,
                    tensor_parallel_size=cfg.vllm_tensor_parallel_size,
                    data_parallel_size=cfg.vllm_data_parallel_size,
                    gpu_memory_utilization=cfg.vllm_gpu_memory_utilization,
                    max_model_len=cfg.vllm_max_model_len,
                    max_lora_rank=max(cfg.lora_r, 8),
                    dtype=cfg.dtype,
                    seed=cfg.seed,
                    sleep_between_calls=cfg.vllm_enable_sleep_mode,
                )
            self._generator.set_adapter(adapter_dir)
            return self._generator
        from sf_train.generate.hf import HFWorkflowGenerator

        self._ensure_model(adapter_dir)
        if self._generator is None:
            generator_class = HFWorkflowGenerator
            if self._backend() == GenerationBackend.FAST_HF:
                from sf_train.generate.fast_hf import FastHFWorkflowGenerator

                generator_class = FastHFWorkflowGenerator
            self._generator = generator_class(self.model, self.tokenizer, params, prompt_fn=self.prompt_fn)
        return self._generator

    def _backend(self) -> GenerationBackend:
        """The configured generation backend, ``auto`` resolved (fast-hf on CUDA, else hf)."""
        from sf_train.modeling import device_for

        backend = GenerationBackend(self.config.generation_backend)
        if backend != GenerationBackend.AUTO:
            return backend
        return GenerationBackend.HF if device_for(self.config) == "cpu" else GenerationBackend.FAST_HF

    # --- stages -------------------------------------------------------------------------
    def _generate(
        self, stage_dir: Path, problems: Sequence[Any], k: int, adapter_dir: Path | None, seed: int
    ) -> tuple[dict[str, dict[str, Any]], dict[str, float]]:
        path = stage_dir / "samples.jsonl"
        done = {row["task_id"]: row for row in _read_jsonl(path) if len(row.get("completions", ())) == k}
        todo = [p for p in problems if p.id not in done]
        cost = {"generator_seconds": 0.0, "generator_tokens": 0.0}
        if todo:
            # scoring starts only after generation finished, so records of tasks still to generate
            # can only be left over from an interrupted earlier attempt: drop them with the scores
            _drop_stale_scores(stage_dir, {p.id for p in todo})
            generator = self._make_generator(adapter_dir)
            seconds0, tokens0 = generator.seconds, generator.new_tokens
            per_call = max(1, self.config.generation_batch_size // k)
            if self.config.generation_backend == GenerationBackend.VLLM:
                per_call = max(per_call, 256)
            self.report(
                f"{stage_dir.name}: generating {k} workflows for {len(todo)} tasks ({len(done)} already done)"
            )
            for at in range(0, len(todo), per_call):
                chunk = todo[at : at + per_call]
                prompts = [self.prompt_fn(p) for p in chunk]
                generator.params = _with_seed(generator.params, seed * 1_000_003 + problems.index(chunk[0]))
                texts, rejected = self._regenerate_invalid(
                    generator, chunk, prompts, generator.generate_texts(prompts, k), stage_dir
                )
                rows = [
                    {
                        "task_id": p.id,
                        "prompt": prompt,
                        "completions": group,
                        **({"rejected": rejected[i]} if rejected.get(i) else {}),
                    }
                    for i, (p, prompt, group) in enumerate(zip(chunk, prompts, texts, strict=True))
                ]
                _append_jsonl(path, rows)
                done.update({r["task_id"]: r for r in rows})
                self.report(f"{stage_dir.name}: generated {min(at + per_call, len(todo))}/{len(todo)} tasks")
            cost["generator_seconds"] = generator.seconds - seconds0
            cost["generator_tokens"] = float(generator.new_tokens - tokens0)
        return done, cost

    def _regenerate_invalid(
        self,
        generator: Any,
        problems: Sequence[Any],
        prompts: list[str],
        texts: list[list[str]],
        stage_dir: Path,
    ) -> tuple[list[list[str]], dict[int, dict[str, dict[str, str]]]]:
        """Resample what fails validation or a validity filter, up to ``max_regenerations``
        rounds. Every filter rejection goes to ``stage_dir/rejections.jsonl`` (task, sample,
        round, reason); returns the texts and the rejections still standing, per chunk index
        and sample index (those are not scored and never enter pairs)."""
        rounds = self.config.max_regenerations
        from sf_workflows import as_task, parse_workflow, validate_workflow
        from sf_workflows.errors import WorkflowParseError

        def verdict(text: str, problem: Any) -> tuple[bool, Any]:
            rejection = self.profile.reject(text)
            if rejection is not None:
                return False, rejection
            if rounds <= 0:
                return True, None
            try:
                source = parse_workflow(text)
            except WorkflowParseError:
                return False, None
            task = as_task(problem)
            return validate_workflow(source, task.task_type, problem_text=task.generator_text).ok, None

        log: list[dict[str, Any]] = []
        standing: dict[int, dict[str, dict[str, str]]] = {}
        for round_ in range(rounds + 1):
            bad = []
            standing = {}
            for i, group in enumerate(texts):
                for j, t in enumerate(group):
                    ok, rejection = verdict(t, problems[i])
                    if rejection is not None:
                        standing.setdefault(i, {})[str(j)] = rejection.to_dict()
                        log.append(
                            {"task_id": problems[i].id, "sample": j, "round": round_, **rejection.to_dict()}
                        )
                    if not ok:
                        bad.append((i, j))
            if not bad or round_ == rounds:
                break
            again = generator.generate_texts([prompts[i] for i, _ in bad], 1)
            for (i, j), (text,) in zip(bad, again, strict=True):
                texts[i][j] = text
        if log:
            _append_jsonl(stage_dir / "rejections.jsonl", log)
        return texts, standing

    def _score(
        self, stage_dir: Path, problems: Sequence[Any], samples: dict[str, dict[str, Any]], tag: str
    ) -> tuple[list[ScoredSample], dict[str, float]]:
        path = stage_dir / "scores.jsonl"
        rows = _read_jsonl(path)
        expected = sum(len(samples[p.id]["completions"]) for p in problems)
        if len(rows) == expected and (stage_dir / "score_cost.json").exists():
            scored = [ScoredSample.from_dict(r) for r in rows]
            return scored, json.loads((stage_dir / "score_cost.json").read_text(encoding="utf-8"))
        self.report(
            f"{stage_dir.name}: running and scoring {expected} workflows × "
            f"{self.config.runs_per_workflow} runs in the sandbox"
        )
        rejected = {p.id: samples[p.id].get("rejected") or {} for p in problems}
        completions = {  # a rejected sample is not run: "" fails parsing at once (score 0, no cost)
            p.id: ["" if str(j) in rejected[p.id] else t for j, t in enumerate(samples[p.id]["completions"])]
            for p in problems
        }
        pool = self._ray_sandbox() if self.config.ray_address is not None else None
        start = time.perf_counter()
        failed_before = int(getattr(self.executor, "failed_attempts", 0) or 0)
        results = asyncio.run(self._score_async(problems, completions, stage_dir, tag, pool))
        scored: list[ScoredSample] = []
        cost = {
            "executor_usd": 0.0,
            "executor_input_tokens": 0.0,
            "executor_output_tokens": 0.0,
            "score_seconds": time.perf_counter() - start,
            "executor_failed_attempts": float(
                int(getattr(self.executor, "failed_attempts", 0) or 0) - failed_before
            ),
        }
        for p in problems:
            texts = samples[p.id]["completions"]
            for index, (text, result) in enumerate(zip(texts, results[p.id], strict=True)):
                rejection = rejected[p.id].get(str(index))
                scored.append(
                    ScoredSample(
                        task_id=p.id,
                        index=index,
                        prompt=samples[p.id]["prompt"],
                        completion=text,
                        score=0.0 if rejection else result.score,
                        failure=f"{REJECTED_PREFIX}{rejection['reason']}: {rejection['detail']}"
                        if rejection
                        else result.failure,
                        infra=None if rejection else result.infra,
                    )
                )
                cost["executor_usd"] += result.cost
                cost["executor_input_tokens"] += result.input_tokens
                cost["executor_output_tokens"] += result.output_tokens
        _write_jsonl(path, [s.to_dict() for s in scored])
        _write_json(stage_dir / "score_cost.json", cost)
        return scored, cost

    async def _score_async(
        self,
        problems: Sequence[Any],
        completions: dict[str, list[str]],
        stage_dir: Path,
        tag: str,
        pool: Any = None,
    ) -> Any:
        """Run and score every completion: on ``pool`` (the run's RayPool) when given, else in a
        sandbox pool of this machine opened for the stage."""
        from sf_train.scoring import SandboxRunner, score_completions
        from sf_workflows import open_sandbox

        cfg = self.config

        async def score(sandbox: Any, containers: int) -> Any:
            options = (
                {} if self.profile.operator_style is None else {"operator_style": self.profile.operator_style}
            )
            runner = SandboxRunner(self.executor, sandbox, timeout=cfg.workflow_timeout, run_options=options)
            return await score_completions(
                problems,
                completions,
                dataset=self.dataset,
                runner=runner,
                runs=cfg.runs_per_workflow,
                out_dir=stage_dir / "bench",
                concurrency=max(containers, 1) * 2,
                tag=tag,
                timeout=cfg.workflow_timeout + 60.0,
                max_infra_share=cfg.max_infra_failure_share,
                scorers=self.profile.scorers(self.executor),
            )

        if pool is not None:
            return await score(pool, sum(n.pool_size for n in pool.nodes if not n.lost))
        async with open_sandbox(
            image=cfg.sandbox_image,
            pool_size=cfg.sandbox_pool_size,
            backend=cfg.sandbox_backend,
            jobs_per_container=cfg.sandbox_jobs_per_container,
        ) as sandbox:
            return await score(sandbox, cfg.sandbox_pool_size * cfg.sandbox_jobs_per_container)

    # --- Ray (ray_address, train_launcher: ray) ------------------------------------------------
    def _connect_ray(self) -> Any:
        """The ``ray`` module, connected to ``config.ray_address`` (once per run)."""
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

    def _ray_sandbox(self) -> Any:
        """The run's started RayPool: one warm pool per node, each node answering its jobs'
        operator calls with its own executor."""
        if self._ray_pool is None:
            from sf_sandbox import Limits
            from sf_sandbox.ray_pool import RayPool
            from sf_workflows import remote_host, runtime_preload

            self._connect_ray()
            cfg = self.config
            pool = RayPool(
                image=cfg.sandbox_image,
                pool_size=cfg.ray_pool_size,
                limits=Limits(),
                node_host=remote_host(self._node_executor()),
                preload=runtime_preload(),
            )
            pool.start()
            self._ray_pool = pool
            nodes = ", ".join(f"{n.short_id} ({n.address}, {n.pool_size} containers)" for n in pool.nodes)
            self.report(f"ray: workflows run on {len(pool.nodes)} node(s): {nodes}")
            for node_id, why in pool.report.skipped.items():
                self.report(f"ray: node {node_id[:8]} not used: {why}")
        return self._ray_pool

    def _node_executor(self) -> Any:
        """What each node builds its executor from: the executor given to run_loop (it must
        pickle), else an ExecutorConfig from the ``executor_*`` fields without the key."""
        if self._executor_given:
            from ray import cloudpickle

            try:
                cloudpickle.dumps(self._executor)
            except Exception as exc:  # noqa: BLE001 - any pickling failure means the same thing
                raise TrainConfigError(
                    "ray_address: the executor given to run_loop must pickle to run on the Ray nodes "
                    f"({type(exc).__name__}: {exc}); pass none to build one per node from the "
                    "executor_* fields"
                ) from None
            return self._executor
        from sf_workflows import ExecutorConfig
        from sf_workflows.executor.client import KEY_ENVS

        cfg = self.config
        return ExecutorConfig(
            model=cfg.executor_model,
            base_url=cfg.executor_base_url,
            api_key=None,  # each node reads it from executor_api_key_env in its own environment
            key_envs=tuple(dict.fromkeys((cfg.executor_api_key_env, *KEY_ENVS))),  # as _default_executor
            temperature=cfg.executor_temperature,
            concurrency=cfg.executor_concurrency,
            cache_dir=str(Path(cfg.executor_cache_dir or self.out / "executor-cache").resolve()),
        )

    def _close_ray(self) -> None:
        pool, self._ray_pool = self._ray_pool, None
        if pool is not None:
            pool.close()
            for line in pool.report.format().splitlines():
                self.report(line)
        if self._owns_ray:
            import ray

            ray.shutdown()
            self._owns_ray = False

    def _pairs(self, stage_dir: Path, scored: list[ScoredSample], iteration: int) -> tuple[list[Pair], dict]:
        cfg = self.config
        pool = build_pairs(s for s in scored if not (s.failure or "").startswith(REJECTED_PREFIX))
        pairs = sample_pairs(pool, cfg.num_pairs, gap_fn=cfg.gap_fn, seed=cfg.effective_pair_seed + iteration)
        stats = asdict(pair_stats(scored))
        stats["sampled_pairs"] = len(pairs)
        _write_jsonl(stage_dir / "pairs.jsonl", [p.to_dict() for p in pairs])
        _write_json(stage_dir / "pair_stats.json", stats)
        return pairs, stats

    def _train(
        self,
        stage_dir: Path,
        iteration: int,
        scored: list[ScoredSample],
        pairs: list[Pair],
        previous_adapter: Path | None,
    ) -> dict[str, Any]:
        from sf_train.modeling import save_adapter
        from sf_train.objectives import train_info, train_objective

        adapter = stage_dir / "adapter"
        if (stage_dir / "train.json").exists() and (adapter / "adapter_config.json").exists():
            return json.loads((stage_dir / "train.json").read_text(encoding="utf-8"))
        if self.config.train_launcher == TrainLauncher.RAY:
            from sf_train.ray_train import train_on_ray

            self._connect_ray()
            self.report(
                f"{stage_dir.name}: training ({self.config.objective}) on {len(pairs)} pairs under "
                f"Ray Train, {self.config.ray_train_workers} worker(s)"
            )
            info = train_on_ray(
                self.config, stage_dir=stage_dir, iteration=iteration, previous_adapter=previous_adapter
            )
            self._adapter_loaded = "stale"  # the adapter on disk is newer than any model in memory
            return info
        self._ensure_model(previous_adapter)
        self.report(f"{stage_dir.name}: training ({self.config.objective}) on {len(pairs)} pairs")
        from sf_train.profiles import training_tokenizer

        result = train_objective(
            self.model,
            training_tokenizer(self.tokenizer, bos=bool(self.config.train_bos_token)),
            self.config,
            samples=scored,
            pairs=pairs,
            output_dir=stage_dir / "trainer",
            seed=self.config.effective_pair_seed + iteration,
        )
        if self.state.is_main_process:
            save_adapter(self.model, adapter)
        self.state.wait_for_everyone()
        self._adapter_loaded = adapter
        if self._generator is not None and hasattr(self._generator, "model"):
            self._generator.model = self.model
        info = train_info(result, self.config.objective)
        if self.state.is_main_process:
            _write_json(stage_dir / "train.json", info)
        return info

    def _evaluate(
        self, name: str, problems: Sequence[Any], adapter: Path | None, seed: int
    ) -> dict[str, Any]:
        stage_dir = self.out / name
        if (stage_dir / "metrics.json").exists():
            return json.loads((stage_dir / "metrics.json").read_text(encoding="utf-8"))
        stage_dir.mkdir(parents=True, exist_ok=True)
        samples, gen_cost = self._generate(stage_dir, problems, self.config.eval_k, adapter, seed)
        scored, score_cost = self._score(stage_dir, problems, samples, tag=name)
        stats = pair_stats(scored)
        metrics = {
            "name": name,
            "adapter": str(adapter) if adapter else None,
            "tasks": len(problems),
            "samples": len(scored),
            "mean_score": stats.mean_score,
            "failed_samples": stats.failed_samples,
            "infra_failed_samples": stats.infra_failed_samples,
            "cost": {**gen_cost, **score_cost},
        }
        _write_json(stage_dir / "metrics.json", metrics)
        self.report(f"{name}: mean score {metrics['mean_score']:.3f} over {len(scored)} workflows")
        return metrics

    # --- driver -------------------------------------------------------------------------
    def run(self) -> LoopResult:
        if self.config.train_launcher == TrainLauncher.RAY and self.state.num_processes > 1:
            raise TrainConfigError(
                "train_launcher: ray starts its own training processes; run the loop as one process "
                "(not under accelerate launch)"
            )
        try:
            return self._run()
        finally:
            self._close_ray()

    def _run(self) -> LoopResult:
        cfg = self.config
        self._check_config()
        result = LoopResult(output_dir=str(self.out))
        main = self.state.is_main_process
        if main:
            _ = self.executor  # a missing key or endpoint fails now, before any generation
            if cfg.ray_address is not None:
                self._connect_ray()  # so does a missing Ray or an unreachable cluster
        previous: Path | None = None
        for i in range(cfg.iterations):
            stage_dir = self.out / f"iter-{i}"
            stage_dir.mkdir(parents=True, exist_ok=True)
            metrics_path = stage_dir / "metrics.json"
            if metrics_path.exists():
                metrics = json.loads(metrics_path.read_text(encoding="utf-8"))
                result.iterations.append(metrics)
                if self.eval_each_iteration and self.eval_problems and main:
                    result.heldout.append(
                        self._evaluate(
                            f"heldout-{i}", self.eval_problems, previous, cfg.seed + 7919 * (i + 1)
                        )
                    )
                previous = stage_dir / "adapter"
                self.report(f"iter-{i}: done before (mean score {metrics['mean_score']:.3f}), skipping")
                continue
            if self.eval_each_iteration and self.eval_problems and main:
                result.heldout.append(
                    self._evaluate(f"heldout-{i}", self.eval_problems, previous, cfg.seed + 7919 * (i + 1))
                )
            if main:
                samples, gen_cost = self._generate(
                    stage_dir, self.train_problems, cfg.k, previous, cfg.seed + i
                )
                scored, score_cost = self._score(stage_dir, self.train_problems, samples, tag=f"iter-{i}")
                pairs, stats = self._pairs(stage_dir, scored, i)
                self.report(
                    f"iter-{i}: mean score {stats['mean_score']:.3f}, {stats['failed_samples']} failed, "
                    f"{stats['infra_failed_samples']} unscored by endpoint/sandbox failures (not paired), "
                    f"{stats['pool_pairs']} pairs in the pool, {len(pairs)} sampled"
                    + (
                        f"; {int(score_cost.get('executor_failed_attempts', 0))} executor calls failed "
                        "and were retried"
                        if score_cost.get("executor_failed_attempts")
                        else ""
                    )
                )
            self.state.wait_for_everyone()
            if not main:
                scored = [ScoredSample.from_dict(r) for r in _read_jsonl(stage_dir / "scores.jsonl")]
                pairs = [Pair.from_dict(r) for r in _read_jsonl(stage_dir / "pairs.jsonl")]
                stats, gen_cost, score_cost = {}, {}, {}
            train = self._train(stage_dir, i, scored, pairs, previous)
            previous = stage_dir / "adapter"
            if main:
                cost = {
                    **gen_cost,
                    **score_cost,
                    "generator_device_seconds": gen_cost.get("generator_seconds", 0.0) * self._gen_devices(),
                    "trainer_device_seconds": float(train.get("device_seconds", 0.0)),
                }
                metrics = {
                    "iteration": i,
                    **stats,
                    "train": {k: v for k, v in train.items() if k != "log_history"},
                    "train_losses": [h["loss"] for h in train.get("log_history", []) if "loss" in h],
                    "cost": cost,
                }
                _write_json(metrics_path, metrics)
                result.iterations.append(metrics)
                self.report(
                    f"iter-{i}: trained {train.get('steps', 0)} steps, "
                    f"loss {train.get('train_loss')!s}; adapter saved to {previous}"
                )
            self.state.wait_for_everyone()

        if main:
            if self.eval_each_iteration and self.eval_problems:
                result.heldout.append(
                    self._evaluate(
                        "heldout-final", self.eval_problems, previous, cfg.seed + 7919 * (cfg.iterations + 1)
                    )
                )
            if self.eval_problems:
                result.eval = self._evaluate("eval", self.eval_problems, previous, cfg.seed + 104_729)
            _write_jsonl(self.out / "metrics.jsonl", result.iterations)
            result.cost = _total_cost(result.iterations)
            _write_json(self.out / "summary.json", asdict(result))
        self.state.wait_for_everyone()
        return result

    def _gen_devices(self) -> int:
        cfg = self.config
        if cfg.generation_backend == GenerationBackend.VLLM:
            return cfg.vllm_tensor_parallel_size * cfg.vllm_data_parallel_size
        return 1


def _drop_stale_scores(stage_dir: Path, task_ids: set[str]) -> None:
    for name in ("scores.jsonl", "score_cost.json"):
        (stage_dir / name).unlink(missing_ok=True)
    bench = stage_dir / "bench"
    for records in bench.glob("*.jsonl") if bench.exists() else ():
        kept = [r for r in _read_jsonl(records) if r.get("problem_id") not in task_ids]
        _write_jsonl(records, kept)


def _total_cost(iterations: Sequence[dict[str, Any]]) -> dict[str, float]:
    total: dict[str, float] = {}
    for it in iterations:
        for key, value in it.get("cost", {}).items():
            if isinstance(value, int | float):
                total[key] = total.get(key, 0.0) + float(value)
    return total


def _with_seed(params: Any, seed: int) -> Any:
    import dataclasses

    return dataclasses.replace(params, seed=seed)


def _default_executor(config: ScoreDPOConfig, out: Path) -> Any:
    from sf_workflows import Executor, ExecutorConfig
    from sf_workflows.errors import WorkflowConfigError

    try:
        return Executor(
            ExecutorConfig(
                model=config.executor_model,
                base_url=config.executor_base_url,
                api_key=os.environ.get(config.executor_api_key_env) or None,
                temperature=config.executor_temperature,
                concurrency=config.executor_concurrency,
                cache_dir=config.executor_cache_dir or str(out / "executor-cache"),
            )
        )
    except WorkflowConfigError as exc:
        message = str(exc)
        if "no executor endpoint" in message:
            message = (
                f"no executor endpoint: set ${config.executor_api_key_env} for the OpenAI API, or "
                "executor_base_url (--executor_base_url) for a local OpenAI-compatible server "
                "(vLLM: http://localhost:8000/v1)"
            )
        raise TrainConfigError(message) from exc


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
        reporter: Receives progress lines (default: stderr with a timestamp).
        eval_each_iteration: Also evaluate the eval tasks with the adapter at the start of every
            iteration and at the end (the held-out learning curve); default
            ``config.eval_each_iteration``.

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
    loop = _Loop(
        config,
        train_problems=train_problems,
        eval_problems=eval_problems,
        executor=executor,
        model=model,
        tokenizer=tokenizer,
        prompt_fn=prompt_fn,
        dataset_name=dataset_name,
        reporter=reporter,
        eval_each_iteration=config.eval_each_iteration
        if eval_each_iteration is None
        else eval_each_iteration,
    )
    return loop.run()
