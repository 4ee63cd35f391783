"""Which models the fast decoder runs, and small checks it shares with its kernels' callers."""

from __future__ import annotations

from typing import Any

from sf_train.fast._model import causal_lm

__all__ = ["pow2_at_least_16", "sliding_window", "triton_ok", "unsupported_reason"]

_SUPPORTED = ("llama", "mistral", "qwen2", "qwen3")
_SCALED_HEAD_FIELDS = (
    "final_logit_softcapping",
    "logit_scale",
    "output_multiplier",
    "lm_head_multiplier",
    "logits_scaling",
    "attn_logit_softcapping",
)


def unsupported_reason(model: Any) -> str | None:
    """None when :class:`SharedPrefixDecoder` can run ``model``, else a one-line reason."""
    lm = causal_lm(model)
    cfg = getattr(lm, "config", None)
    if cfg is None:
        return f"{type(lm).__name__} has no transformers config"
    cfg = cfg.get_text_config()
    if cfg.model_type not in _SUPPORTED:
        return f"model_type {cfg.model_type!r} is not one of {', '.join(_SUPPORTED)}"
    for name in _SCALED_HEAD_FIELDS:
        if getattr(cfg, name, None) not in (None, 1.0):
            return f"{name}={getattr(cfg, name)!r} is not supported"
    backbone = getattr(lm, "base_model", None)
    layers = getattr(backbone, "layers", None)
    if not layers or not all(hasattr(backbone, a) for a in ("embed_tokens", "norm", "rotary_emb")):
        return f"{type(lm).__name__} does not have a Llama-style decoder stack"
    attn = getattr(layers[0], "self_attn", None)
    if attn is None or not all(hasattr(attn, a) for a in ("q_proj", "k_proj", "v_proj", "o_proj")):
        return "the attention block lacks q/k/v/o projections"
    if not all(hasattr(layers[0], a) for a in ("input_layernorm", "post_attention_layernorm", "mlp")):
        return "the decoder layer is not pre-norm attention + MLP"
    return None


def sliding_window(cfg: Any) -> int | None:
    """The attention window of ``cfg`` in tokens, None when attention is global."""
    window = getattr(cfg, "sliding_window", None)
    if window is None:
        return None
    if cfg.model_type in ("qwen2", "qwen3") and not getattr(cfg, "use_sliding_window", False):
        return None
    return int(window)


def pow2_at_least_16(n: int) -> bool:
    """True for head dimensions the Triton kernels tile (whole heads)."""
    return n >= 16 and n & (n - 1) == 0


def triton_ok() -> bool:
    """True when Triton imports."""
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True
