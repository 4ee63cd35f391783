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

Parameters, grouped (one dataclass mixin per group in :mod:`sf_train.config_fields`, inherited in
this order, so flags and YAML keys keep it):

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
    executor_concurrency, executor_cache_dir, sandbox (the sandbox section: backend, image,
    runtime, pool_size, limits, as `sf_sandbox.SandboxSettings`), sandbox_image,
    sandbox_pool_size, sandbox_backend (its older flat spellings), workflow_timeout.

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
from typing import Any

from trl.trainer.dpo_config import DPOConfig

from sf_train.config_fields import help_text as _help
from sf_train.config_fields.execution import ExecutionFields
from sf_train.config_fields.generation import GenerationBackend, GenerationFields, PromptFields, VLLMFields
from sf_train.config_fields.loop import LoopFields
from sf_train.config_fields.model import ModelFields
from sf_train.config_fields.objective import FAST_TRAINER, Objective, ObjectiveFields
from sf_train.config_fields.scale_out import RayFields, TrainLauncher
from sf_train.errors import TrainConfigError
from sf_train.pairs import resolve_gap_fn, resolve_weight_fn
from sf_train.profiles import PROFILE_FIELDS, PROFILES, extracted_datasets, profile_default

__all__ = ["GenerationBackend", "Objective", "ScoreDPOConfig", "TrainLauncher"]


@dataclass
class ScoreDPOConfig(
    RayFields,
    ExecutionFields,
    VLLMFields,
    PromptFields,
    GenerationFields,
    ModelFields,
    ObjectiveFields,
    LoopFields,
    DPOConfig,
):
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
        self._resolve_sandbox()

    _SANDBOX_FLAT = {"backend": "sandbox_backend", "image": "sandbox_image", "pool_size": "sandbox_pool_size"}
    """The flat fields that spell a setting of the ``sandbox`` section (kept for old configs)."""

    def _resolve_sandbox(self) -> None:
        """Merge the ``sandbox`` section and the flat ``sandbox_*`` fields into one settings object.

        The result is a :class:`~sf_sandbox.settings.SandboxSettings` (``sandbox_settings``); both
        views agree after.

        Raises:
            TrainConfigError: a bad section, or a setting given both ways with two values.
        """
        import dataclasses
        from dataclasses import fields as dc_fields

        from sf_sandbox.errors import SandboxConfigError
        from sf_sandbox.settings import SandboxSettings

        section = self.sandbox
        defaults = {f.name: f.default for f in dc_fields(self) if f.name in self._SANDBOX_FLAT.values()}
        try:
            mapping = SandboxSettings.parse_text(section) if isinstance(section, str) else dict(section or {})
            typed = SandboxSettings.from_mapping(mapping)
            given = {str(k).partition(".")[0] for k in mapping}
            flat = {key: getattr(self, name) for key, name in self._SANDBOX_FLAT.items()}
            for key, name in self._SANDBOX_FLAT.items():
                value = getattr(typed, key)
                if key in given and flat[key] != defaults[name] and flat[key] != value:
                    raise TrainConfigError(
                        f"config field `sandbox`: {key} is {value!r} but {name} is {flat[key]!r}; "
                        "set it in one place"
                    )
            settings = SandboxSettings.from_mapping(mapping, base=SandboxSettings(**flat))
        except SandboxConfigError as exc:
            raise TrainConfigError(f"config field `sandbox`: {exc}") from None
        if settings.pool_size is None:  # `pool_size: null`: the flat field's default
            settings = dataclasses.replace(settings, pool_size=defaults["sandbox_pool_size"])
        for key, name in self._SANDBOX_FLAT.items():
            if getattr(settings, key) is not None:
                setattr(self, name, getattr(settings, key))
        self.sandbox = settings.to_dict() if mapping else None
        self.sandbox_settings = settings
        """The run's sandbox settings (this machine's pool; the Ray pools use ``ray_pool_size``)."""

    def _apply_profile(self) -> None:
        """Fill every profile-governed field left ``None`` from ``profile`` for ``dataset``.

        ``from_profile`` records which fields came from the profile, with their values.
        """
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
        self._validate_choices()
        self._validate_ranges()

    def _bad(self, name: str, why: str) -> TrainConfigError:
        return TrainConfigError(f"config field `{name}`: {why} (got {getattr(self, name)!r})")

    def _validate_choices(self) -> None:
        """The fields that name one of a set of values (and the Ray settings they imply)."""
        bad = self._bad
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
        if self.fast_trainer not in FAST_TRAINER:
            raise bad("fast_trainer", f"must be one of {', '.join(FAST_TRAINER)}")
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
        if self.reference not in ("base", "previous"):
            raise bad("reference", "must be 'base' or 'previous'")

    def _validate_ranges(self) -> None:
        """The numeric fields' ranges and the fields that must name something."""
        bad = self._bad
        for name in (
            "iterations",
            "num_pairs",
            "runs_per_workflow",
            "eval_k",
            "max_new_tokens",
            "generation_batch_size",
            "lora_r",
            "sandbox_pool_size",
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
        if self.answer_extraction and self.dataset not in extracted_datasets():
            raise bad("answer_extraction", f"applies to {', '.join(extracted_datasets())} only")
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
