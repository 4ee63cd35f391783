"""Finding the transformers causal LM inside DDP / PEFT wrappers (no trl import)."""

from __future__ import annotations

from typing import Any

__all__ = ["causal_lm"]


def causal_lm(model: Any) -> Any:
    """The transformers causal LM under DDP and PEFT wrappers (LoRA layers stay injected in it)."""
    while hasattr(model, "module") and not hasattr(model, "get_output_embeddings"):
        model = model.module
    get_base = getattr(model, "get_base_model", None)
    if callable(get_base) and hasattr(model, "peft_config"):
        model = get_base()
    return model
