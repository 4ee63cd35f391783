"""`ScoreDPOConfig`: every knob of the ScoreFlow loop, as one TRL-style dataclass.

`ScoreDPOConfig` subclasses TRL's `DPOConfig` (itself a `transformers.TrainingArguments`), so
every training argument TRL and transformers know is available, and TRL's parser turns the
whole class into command-line flags and YAML keys (`sf train run --config FILE.yaml --k 4`).

Defaults mirror the official ScoreFlow run (Gen-Verse/ScoreFlow@2492563838f7; see
`SCOREFLOW.md` §1.4 and §2.2 in the project notes). Where a default comes from there, its help
text says ``[official: …]`` with the source file. Defaults that are ours say so.

Fields whose help ends in ``[default from the profile; …]`` default to ``None`` and are filled
from ``profile`` ("ours" or "scoreflow", per dataset; `sf_train.profiles`) when the config is
built; ``config.from_profile`` lists the values a profile supplied.

Parameters, grouped:

> Loop
    iterations (M = 3), k (8 workflows per task), runs_per_workflow (3 executions, score = mean),
    dataset, train_split ("validate"), eval_split ("test"), eval_k (1), limit, data_dir.

> Objective
    objective ("score-dpo" | "dpo" | "sft-on-best" | "ppo"), weight_fn (f, "identity"),
    gap_fn (d, "cube" = (s_w − s_l)^3), num_pairs (N = 2000), pair_seed, reference ("base"),
    fast_trainer ("auto": the GPU fast path for one process on CUDA).

> Model and LoRA
    model_name_or_path (Llama-3.1-8B-Instruct), tokenizer_name_or_path, dtype ("bfloat16"),
    lora_r (8), lora_alpha (16), lora_dropout (0.01), lora_target_modules (q_proj, v_proj).

> Generation
    generation_backend ("auto" | "hf" | "fast-hf" | "vllm"), temperature (0.2), top_p (0.95),
    max_new_tokens (1000), stop ("</graph>"), generation_batch_size, vllm_* (tensor/data parallel,
    memory, max length).

> Executor and sandbox
    executor_model ("gpt-4o-mini"), executor_base_url, executor_api_key_env, executor_temperature (0),
    executor_concurrency, executor_cache_dir, sandbox_image, sandbox_pool_size,
    sandbox_jobs_per_container (1), sandbox_backend ("docker"), workflow_timeout.

> Scale-out on Ray (``sf-train[ray]``; docs/scale-out.md)
    ray_address (None; "auto", "HOST:PORT" or "local": workflows run in the sandbox pools of the
    cluster's nodes), ray_pool_size, train_launcher ("local" | "ray": Ray Train's TorchTrainer),
    ray_train_workers, ray_train_use_gpu, ray_train_cpus_per_worker.

Overridden `DPOConfig`/`TrainingArguments` defaults: `num_train_epochs=1` [official],
`per_device_train_batch_size=1` [official], `max_length=None` [official: no truncation],
`learning_rate=1e-6` (TRL's default, equal to the official one), `save_strategy="no"` (the loop
saves the adapter itself), `output_dir="sf-train-output"`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from trl import DPOConfig

from sf_train.errors import TrainConfigError
from sf_train.pairs import resolve_gap_fn, resolve_weight_fn
from sf_train.profiles import EXTRACTED_DATASETS, PROFILE_FIELDS, PROFILES, profile_default, profile_help

__all__ = ["GenerationBackend", "Objective", "ScoreDPOConfig", "TrainLauncher"]


class Objective(StrEnum):
    """The training objective of one iteration."""

    SCORE_DPO = "score-dpo"
    """ScoreFlow's Score-DPO: DPO whose log-ratio terms are weighted by f(s_w) and 1 − f(s_l)."""
    DPO = "dpo"
    """Plain DPO on the same sampled pairs (scores only pick the winner)."""
    SFT_ON_BEST = "sft-on-best"
    """Supervised fine-tuning on each task's best-scoring workflow."""
    PPO = "ppo"
    """Clipped-ratio policy optimisation on the scored samples (TRL's GRPOTrainer; see README)."""


class GenerationBackend(StrEnum):
    """Which engine samples workflows."""

    AUTO = "auto"
    """``fast-hf`` on a CUDA GPU, ``hf`` elsewhere."""
    HF = "hf"
    """Plain transformers `generate` with the adapter active in-process (always available)."""
    FAST_HF = "fast-hf"
    """sf-train's shared-prefix decoder (one prefix cache per prompt for its k samples, CUDA graphs,
    GQA-aware Triton attention); models it does not support fall back to ``generate``."""
    VLLM = "vllm"
    """vLLM with the LoRA adapter hot-swapped each iteration (`sf-train[vllm]`)."""


class TrainLauncher(StrEnum):
    """Where the training stage of an iteration runs."""

    LOCAL = "local"
    """In the loop's own process(es): one process, or every process of ``accelerate launch``."""
    RAY = "ray"
    """Ray Train's ``TorchTrainer`` on the cluster of ``ray_address`` (``ray_train_workers`` workers)."""


_FAST_TRAINER = ("auto", "on", "off")


def _help(text: str) -> dict[str, Any]:
    return {"help": text}


@dataclass
class ScoreDPOConfig(DPOConfig):
    """Configuration of the ScoreFlow loop and its trainer (see the module docstring for groups).

    Validation happens at construction: a bad value raises
    :class:`~sf_train.errors.TrainConfigError` naming the field.
    """

    # ---- overridden TrainingArguments / DPOConfig defaults -------------------------------
    output_dir: str | None = field(
        default="sf-train-output",
        metadata=_help("Run directory: adapters, samples, scores, pairs and metrics of every iteration."),
    )
    num_train_epochs: float = field(
        default=1.0,
        metadata=_help("Epochs over the sampled pairs per iteration. [official: 1, ScoreFlow optimize.py]"),
    )
    per_device_train_batch_size: int = field(
        default=1,
        metadata=_help("Pairs per device per step. [official: 1, ScoreFlow optimize.py]"),
    )
    max_length: int | None = field(
        default=None,
        metadata=_help(
            "Truncate prompt+completion to this many tokens; None = no truncation. "
            "[official: None, ScoreFlow DPOconfig.py]"
        ),
    )
    bf16: bool | None = field(
        default=None,
        metadata=_help(
            "bf16 mixed precision; None = on when a GPU is used (and fp16 is off), off on CPU. "
            "[official: bf16 weights]"
        ),
    )
    save_strategy: str = field(
        default="no",
        metadata=_help(
            "Trainer checkpoints within an iteration ('no': the loop saves the adapter after each)."
        ),
    )

    # ---- loop ----------------------------------------------------------------------------
    profile: str = field(
        default="ours",
        metadata={
            "help": "Named set of defaults for the fields below marked [default from the profile]: "
            "'ours' (this project's loop, as always) or 'scoreflow' (Gen-Verse/ScoreFlow as "
            "published: its generator and operator prompts read from scoreflow_source, validity "
            "filters, LLM answer extraction, per-dataset N and timeouts, no BOS in training). "
            "A field you set yourself wins over the profile.",
            "choices": list(PROFILES),
        },
    )
    scoreflow_source: str | None = field(
        default=None,
        metadata=_help(
            "Your checkout of https://github.com/Gen-Verse/ScoreFlow (commit 2492563838f7), read "
            "for the scoreflow profile's prompts; None = $SF_SCOREFLOW_SOURCE. ScoreFlow publishes "
            "no license, so its text is not shipped with sf-train."
        ),
    )
    iterations: int | None = field(
        default=None,
        metadata=_help(
            "M: optimisation iterations (generate → score → pairs → train). " + profile_help("iterations")
        ),
    )
    k: int = field(
        default=8,
        metadata=_help(
            "Workflows sampled per training task and iteration. [official: 8, ScoreFlow generate.py]"
        ),
    )
    runs_per_workflow: int = field(
        default=3,
        metadata=_help(
            "Executions of each workflow; its score is the mean (a failed run counts 0). "
            "[official: 3, ScoreFlow get_scores.py vali_num]"
        ),
    )
    dataset: str = field(
        default="gsm8k",
        metadata=_help("sf-bench dataset: humaneval, mbpp, gsm8k, math, drop or hotpotqa."),
    )
    train_split: str = field(
        default="validate",
        metadata=_help("Split whose tasks generate the preference data. [official: validate]"),
    )
    eval_split: str | None = field(
        default="test",
        metadata=_help("Split evaluated after the last iteration (None or '' skips it). [official: test]"),
    )
    eval_k: int = field(
        default=1,
        metadata=_help("Workflows per task at evaluation. [official: 1, ScoreFlow generate.py]"),
    )
    eval_each_iteration: bool = field(
        default=False,
        metadata=_help(
            "Also evaluate the eval split before every iteration (held-out learning curve). Ours."
        ),
    )
    limit: int | None = field(
        default=None,
        metadata=_help("Use only the first N tasks of each split (quick runs); None = all. Ours."),
    )
    data_dir: str | None = field(
        default=None,
        metadata=_help("Directory with the dataset files; None = the splits bundled with sf-bench."),
    )

    # ---- objective ---------------------------------------------------------------------
    objective: str = field(
        default="score-dpo",
        metadata={
            "help": "Training objective. [official: score-dpo]",
            "choices": [o.value for o in Objective],
        },
    )
    weight_fn: str = field(
        default="identity",
        metadata=_help(
            "f in Score-DPO's σ(β[f(s_w)·r_w − (1 − f(s_l))·r_l]): identity, square, sqrt, or "
            "'module:function' (must accept floats and torch tensors). [official: identity]"
        ),
    )
    gap_fn: str = field(
        default="cube",
        metadata=_help(
            "d(s_w, s_l), the pair sampling weight: cube ((s_w−s_l)^3), square, linear, uniform, or "
            "'module:function'. [official: cube, ScoreFlow evaluate.py]"
        ),
    )
    num_pairs: int | None = field(
        default=None,
        metadata=_help(
            "N: pairs drawn with replacement per iteration (ScoreFlow evaluate.py: 600 for HumanEval, "
            "else 2000). " + profile_help("num_pairs")
        ),
    )
    pair_seed: int | None = field(
        default=None,
        metadata=_help("Seed of the pair draw (iteration i uses pair_seed + i); None = `seed`."),
    )
    reference: str = field(
        default="base",
        metadata={
            "help": "Reference policy: 'base' = adapter disabled in every iteration [official]; "
            "'previous' = a frozen copy of the adapter as it was when the iteration started (TRL's default).",
            "choices": ["base", "previous"],
        },
    )
    fast_trainer: str = field(
        default="auto",
        metadata={
            "help": "score-dpo/dpo trainer: 'on' = FastScoreDPOTrainer (reference log-probs once per "
            "iteration, shared-prefix packed pairs, varlen attention, fused kernels; same loss); "
            "'off' = ScoreDPOTrainer (TRL's DPOTrainer with the score weighting); 'auto' = on for one "
            "process on a CUDA GPU with a model it supports, else off.",
            "choices": list(_FAST_TRAINER),
        },
    )

    ppo_kl_coef: float = field(
        default=0.0,
        metadata=_help(
            "ppo objective: KL coefficient to the adapter-disabled reference (TRL GRPO's `beta`)."
        ),
    )
    ppo_clip_epsilon: float = field(
        default=0.2,
        metadata=_help("ppo objective: clipping range of the probability ratio (TRL's `epsilon`)."),
    )
    sft_examples: int | None = field(
        default=None,
        metadata=_help(
            "sft-on-best: examples drawn (with replacement) from the tasks' best workflows; "
            "None = num_pairs, "
            "so every objective takes the same number of optimiser steps on batch size 1."
        ),
    )

    # ---- model and LoRA ----------------------------------------------------------------
    model_name_or_path: str = field(
        default="meta-llama/Llama-3.1-8B-Instruct",
        metadata=_help(
            "Generator: a local directory or a model id already in the Hugging Face cache (nothing is "
            "downloaded). [official: meta-llama/Llama-3.1-8B-Instruct]"
        ),
    )
    tokenizer_name_or_path: str | None = field(
        default=None, metadata=_help("Tokenizer location; None = model_name_or_path.")
    )
    dtype: str = field(
        default="bfloat16",
        metadata={
            "help": "Weights dtype of the base model. [official: bfloat16]",
            "choices": ["bfloat16", "float16", "float32", "auto"],
        },
    )
    lora_r: int = field(default=8, metadata=_help("LoRA rank. [official: 8, optimize.py]"))
    lora_alpha: int = field(default=16, metadata=_help("LoRA alpha. [official: 16, optimize.py]"))
    lora_dropout: float = field(default=0.01, metadata=_help("LoRA dropout. [official: 0.01, optimize.py]"))
    lora_target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "v_proj"],
        metadata=_help("Modules that get a LoRA adapter. [official: q_proj, v_proj, optimize.py]"),
    )

    # ---- generation ----------------------------------------------------------------------
    generation_backend: str = field(
        default="auto",
        metadata={
            "help": "Sampling engine: 'auto' (fast-hf on a CUDA GPU, else hf), 'hf' (transformers "
            "generate), 'fast-hf' (sf-train's shared-prefix CUDA-graph decoder) or 'vllm' "
            "(sf-train[vllm]). [official: vllm 0.6.4 with a merged copy; ours hot-swaps the adapter]",
            "choices": [b.value for b in GenerationBackend],
        },
    )
    temperature: float = field(
        default=0.2, metadata=_help("Sampling temperature. [official: 0.2, config1.yaml]")
    )
    top_p: float = field(default=0.95, metadata=_help("Nucleus sampling. [official: 0.95, generate.py]"))
    max_new_tokens: int = field(
        default=1000, metadata=_help("Tokens per sampled workflow. [official: 1000, generate.py]")
    )
    stop: str = field(
        default="</graph>",
        metadata=_help(
            "Generation stops after this string, which is kept. [official: </graph>, generate.py]"
        ),
    )
    generation_batch_size: int = field(
        default=64, metadata=_help("Sequences per transformers `generate` call (hf backend). Ours.")
    )
    max_regenerations: int | None = field(
        default=None,
        metadata=_help(
            "Resample a workflow that fails sf-workflows validation or a validity filter up to this "
            "many times before it counts as a failure (ScoreFlow generate.py: up to 500 rounds). "
            + profile_help("max_regenerations")
        ),
    )
    generator_prompt: str | None = field(
        default=None,
        metadata={
            "help": "Generator prompt: 'ours' (sf_workflows.build_generator_prompt) or 'scoreflow' "
            "(ScoreFlow's START_PORMPT + task + END_PROMPT, byte for byte, from scoreflow_source). "
            "Both are fed to the generator as a raw string, no chat template, as ScoreFlow does. "
            + profile_help("generator_prompt"),
            "choices": ["ours", "scoreflow"],
        },
    )
    operator_prompts: str | None = field(
        default=None,
        metadata={
            "help": "Operator prompts and behaviour: 'ours' or 'scoreflow' (ScoreFlow's op_prompt.py "
            "texts from scoreflow_source, the system message 'You are a helpful assistant.', Test's "
            "10/6 rounds then regeneration, Programmer's 30 s). " + profile_help("operator_prompts"),
            "choices": ["ours", "scoreflow"],
        },
    )
    validity_filters: bool | None = field(
        default=None,
        metadata=_help(
            "Reject generated workflows too similar to the template (sim_threshold) or containing a "
            "banned substring before scoring; rejections go to iter-N/rejections.jsonl with their "
            "reason, are resampled (max_regenerations), and never enter scoring or pairs. "
            + profile_help("validity_filters")
        ),
    )
    sim_threshold: float | None = field(
        default=None,
        metadata=_help(
            "validity_filters: reject when run_workflow is at least this similar (difflib ratio) to the "
            "template's (> 1 disables). " + profile_help("sim_threshold")
        ),
    )
    banned_substrings: list[str] | None = field(
        default=None,
        metadata=_help(
            "validity_filters: substrings no generated workflow may contain. "
            + profile_help("banned_substrings")
        ),
    )
    answer_extraction: bool | None = field(
        default=None,
        metadata=_help(
            "Score gsm8k/math/drop/hotpotqa answers after an executor LLM extracts the final answer "
            "(metrics f1+llm-extract, math+llm-extract, gsm8k+llm-extract; not the official metric; "
            "its cost is executor spend). " + profile_help("answer_extraction")
        ),
    )
    train_bos_token: bool | None = field(
        default=None,
        metadata=_help(
            "Tokenize training prompts with the tokenizer's BOS token (ScoreFlow's trainer adds none). "
            + profile_help("train_bos_token")
        ),
    )
    vllm_tensor_parallel_size: int = field(
        default=1, metadata=_help("vLLM tensor parallelism (GPUs per engine). [official: #GPUs]")
    )
    vllm_data_parallel_size: int = field(
        default=1, metadata=_help("vLLM data parallelism (engine replicas).")
    )
    vllm_gpu_memory_utilization: float = field(
        default=0.9, metadata=_help("vLLM GPU memory share. [official: 0.9, generate.py]")
    )
    vllm_max_model_len: int = field(
        default=10000, metadata=_help("vLLM context length. [official: 10000, generate.py]")
    )

    vllm_enable_sleep_mode: bool = field(
        default=False,
        metadata=_help(
            "Put the vLLM engine to sleep between generation rounds so training can use the GPU memory."
        ),
    )

    # ---- executor and sandbox ----------------------------------------------------------
    executor_model: str = field(
        default="gpt-4o-mini", metadata=_help("Executor LLM behind the operators. [official: gpt-4o-mini]")
    )
    executor_base_url: str | None = field(
        default=None, metadata=_help("OpenAI-compatible endpoint; None = the client's default.")
    )
    executor_api_key_env: str = field(
        default="OPENAI_API_KEY", metadata=_help("Environment variable holding the executor API key.")
    )
    executor_temperature: float = field(
        default=0.0, metadata=_help("Executor temperature. [official: 0.0, config1.yaml]")
    )
    executor_concurrency: int = field(default=16, metadata=_help("Concurrent executor requests."))
    executor_cache_dir: str | None = field(
        default=None, metadata=_help("On-disk executor response cache; None = <output_dir>/executor-cache.")
    )
    sandbox_image: str = field(default="sf-sandbox:py3", metadata=_help("Sandbox image that runs workflows."))
    sandbox_pool_size: int = field(default=4, metadata=_help("Warm sandbox containers."))
    sandbox_jobs_per_container: int = field(
        default=1,
        metadata=_help(
            "Workflows each sandbox container runs at once, each in a lane of its own (uid, work dir, "
            "process group); > 1 suits workflows that wait on the executor (docker backend only)."
        ),
    )
    sandbox_backend: str = field(
        default="docker",
        metadata={
            "help": "Where workflows run: 'docker' (the isolated sandbox) or 'local-unsafe-no-isolation' "
            "(plain host subprocesses, no isolation at all: only for generated code you trust, on a "
            "machine without Docker).",
            "choices": ["docker", "local-unsafe-no-isolation"],
        },
    )
    workflow_timeout: float | None = field(
        default=None,
        metadata=_help(
            "Seconds per workflow run (ScoreFlow conditions.py TIME_LIMIT: 120; 240 for code). "
            + profile_help("workflow_timeout")
        ),
    )
    max_infra_failure_share: float = field(
        default=0.05,
        metadata=_help(
            "Largest share of an iteration's workflows that our failures (the executor endpoint or the "
            "sandbox, after retries) may leave unscored; those are left out of the pairs. Past it the "
            "iteration stops with an error, and rerunning redoes only them. Ours."
        ),
    )

    # ---- scale-out on Ray -----------------------------------------------------------------
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

    def __post_init__(self) -> None:
        self._apply_profile()
        if isinstance(self.lora_target_modules, str):
            self.lora_target_modules = [m for m in self.lora_target_modules.split(",") if m]
        if self.eval_split == "":
            self.eval_split = None
        if self.bf16 is None:
            import torch

            self.bf16 = not self.fp16 and not self.use_cpu and torch.cuda.is_available()
        super().__post_init__()
        self._validate()

    def _apply_profile(self) -> None:
        """Fill every profile-governed field left ``None`` from ``profile`` for ``dataset``;
        ``from_profile`` records which fields came from the profile, with their values."""
        if self.profile not in PROFILES:
            raise TrainConfigError(
                f"config field `profile`: must be one of {', '.join(PROFILES)} (got {self.profile!r})"
            )
        if isinstance(self.banned_substrings, str):
            self.banned_substrings = [self.banned_substrings]
        taken: dict[str, Any] = dict(getattr(self, "from_profile", {}) or {})
        for name in PROFILE_FIELDS:
            if getattr(self, name) is None:
                value = profile_default(self.profile, name, self.dataset)
                setattr(self, name, value)
                taken[name] = value
        self.from_profile = taken

    def _validate(self) -> None:
        def bad(name: str, why: str) -> TrainConfigError:
            return TrainConfigError(f"config field `{name}`: {why} (got {getattr(self, name)!r})")

        try:
            Objective(self.objective)
        except ValueError:
            raise bad("objective", f"must be one of {', '.join(o.value for o in Objective)}") from None
        try:
            GenerationBackend(self.generation_backend)
        except ValueError:
            raise bad(
                "generation_backend", f"must be one of {', '.join(b.value for b in GenerationBackend)}"
            ) from None
        if self.fast_trainer not in _FAST_TRAINER:
            raise bad("fast_trainer", f"must be one of {', '.join(_FAST_TRAINER)}")
        try:
            TrainLauncher(self.train_launcher)
        except ValueError:
            raise bad("train_launcher", "must be 'local' or 'ray'") from None
        if self.ray_address is not None and not self.ray_address.strip():
            self.ray_address = None
        if self.train_launcher == TrainLauncher.RAY and self.ray_address is None:
            raise bad(
                "train_launcher",
                "'ray' needs a cluster: set ray_address (--ray auto, --ray HEAD_IP:PORT, or --ray local)",
            )
        if self.ray_pool_size is not None and self.ray_pool_size < 1:
            raise bad("ray_pool_size", "must be at least 1, or None for each node's CPU count")
        if self.ray_train_cpus_per_worker < 0:
            raise bad("ray_train_cpus_per_worker", "must be >= 0")
        if self.sandbox_backend not in ("docker", "local-unsafe-no-isolation"):
            raise bad("sandbox_backend", "must be 'docker' or 'local-unsafe-no-isolation'")
        if self.reference not in ("base", "previous"):
            raise bad("reference", "must be 'base' or 'previous'")
        for name in (
            "iterations",
            "num_pairs",
            "runs_per_workflow",
            "eval_k",
            "max_new_tokens",
            "generation_batch_size",
            "lora_r",
            "sandbox_pool_size",
            "sandbox_jobs_per_container",
            "executor_concurrency",
            "ray_train_workers",
        ):
            if getattr(self, name) < 1:
                raise bad(name, "must be at least 1")
        if self.k < 2:
            raise bad("k", "must be at least 2 (pairs need two workflows per task)")
        if self.limit is not None and self.limit < 1:
            raise bad("limit", "must be at least 1, or None for all tasks")
        if self.max_regenerations < 0:
            raise bad("max_regenerations", "must be 0 or more")
        if not 0.0 <= self.max_infra_failure_share <= 1.0:
            raise bad("max_infra_failure_share", "must be in [0, 1]")
        if self.workflow_timeout <= 0:
            raise bad("workflow_timeout", "must be > 0 seconds")
        if self.sim_threshold is not None and not 0.0 < self.sim_threshold:
            raise bad("sim_threshold", "must be > 0 (values above 1 disable the similarity filter)")
        if self.answer_extraction and self.dataset not in EXTRACTED_DATASETS:
            raise bad("answer_extraction", f"applies to {', '.join(EXTRACTED_DATASETS)} only")
        if not 0.0 <= self.lora_dropout < 1.0:
            raise bad("lora_dropout", "must be in [0, 1)")
        if self.temperature < 0.0:
            raise bad("temperature", "must be >= 0")
        if not 0.0 < self.top_p <= 1.0:
            raise bad("top_p", "must be in (0, 1]")
        if not self.lora_target_modules:
            raise bad("lora_target_modules", "must name at least one module")
        resolve_weight_fn(self.weight_fn)
        resolve_gap_fn(self.gap_fn)

    @property
    def effective_pair_seed(self) -> int:
        """The base seed of the pair draw: `pair_seed`, or `seed` when unset."""
        return self.seed if self.pair_seed is None else self.pair_seed
