"""The model section of :class:`~sf_train.config.ScoreDPOConfig`: the generator and its LoRA adapter."""

from __future__ import annotations

from dataclasses import dataclass, field

from sf_train.config_fields import help_text as _help

__all__ = ["ModelFields"]


@dataclass
class ModelFields:
    """The base model (local files only) and the LoRA adapter trained on it."""

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
