"""The generation section of :class:`~sf_train.config.ScoreDPOConfig`: how workflows are sampled."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from sf_train.config_fields import FROM_PROFILE
from sf_train.config_fields import help_text as _help
from sf_train.profiles import profile_help

__all__ = ["GenerationBackend", "GenerationFields", "PromptFields", "VLLMFields"]


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


@dataclass
class GenerationFields:
    """The sampling engine and its parameters."""

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
    max_regenerations: int = field(
        default=FROM_PROFILE,
        metadata=_help(
            "Resample a workflow that fails sf-workflows validation or a validity filter up to this "
            "many times before it counts as a failure (ScoreFlow generate.py: up to 500 rounds). "
            + profile_help("max_regenerations")
        ),
    )


@dataclass
class PromptFields:
    """The generator prompt, the operator prompts and the validity filters (profile-governed)."""

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


@dataclass
class VLLMFields:
    """The vLLM engine (``generation_backend: vllm``)."""

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
