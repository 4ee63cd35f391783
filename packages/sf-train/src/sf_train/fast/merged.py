"""Decode-time projection weights: per layer one ``[q|k|v]`` and one ``[gate|up]`` matrix.

Any LoRA adapter is folded in (``W + scaling · B A``, computed in float32); they are built from the
live weights.

The model's own weights are never modified; :func:`merge_layer` returns None for a layer it cannot
fold (several adapters, DoRA, dropout, a quantised base, MLP biases), and the decoder then calls the
modules.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

__all__ = ["MergedLayer", "effective_linear", "merge_layer", "merged_bytes", "residual_linear"]


@dataclass(slots=True)
class MergedLayer:
    """One decoder layer's projections as fused matrices with any LoRA adapter folded in."""

    qkv: torch.Tensor
    qkv_bias: torch.Tensor | None
    o: torch.Tensor
    o_bias: torch.Tensor | None
    gate_up: torch.Tensor
    down: torch.Tensor
    split: tuple[int, int, int]


def effective_linear(layer: Any, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor | None] | None:
    """(weight, bias) that ``layer`` applies, or None when it cannot be folded.

    That is a plain ``nn.Linear``'s own, or a PEFT LoRA ``Linear``'s base weight plus
    ``scaling · B A`` of its one active plain adapter; None when it is anything else
    (several adapters, DoRA, dropout, a quantised base, a merged-then-disabled adapter).
    """
    if type(layer) is torch.nn.Linear:
        return layer.weight, layer.bias
    try:
        from peft.tuners.lora import Linear as LoraLinear
    except ImportError:  # pragma: no cover - peft is a dependency
        return None
    if not isinstance(layer, LoraLinear) or getattr(layer, "fan_in_fan_out", False):
        return None
    base = layer.get_base_layer()
    if type(base) is not torch.nn.Linear:
        return None
    if layer.disable_adapters:
        return None if layer.merged else (base.weight, base.bias)
    if layer.merged:
        return None
    active = [name for name in layer.active_adapters if name in layer.lora_A]
    if not active:
        return base.weight, base.bias
    if len(active) != 1:
        return None
    name = active[0]
    if not isinstance(layer.lora_dropout[name], torch.nn.Identity):
        return None
    if getattr(layer, "use_dora", {}).get(name, False) or getattr(layer, "lora_bias", {}).get(name, False):
        return None
    a: Any = layer.lora_A[name]
    b: Any = layer.lora_B[name]
    if any(type(m) is not torch.nn.Linear or m.bias is not None for m in (a, b)):
        return None
    delta = (b.weight.float() @ a.weight.float()).mul_(float(layer.scaling[name]))
    return (base.weight.float() + delta).to(dtype), base.bias


def merge_layer(layer: Any, dtype: torch.dtype) -> MergedLayer | None:
    """``layer``'s projections fused and adapter-folded in ``dtype``, or None (see the module docstring)."""
    attn, mlp = layer.self_attn, layer.mlp
    if not all(hasattr(mlp, a) for a in ("gate_proj", "up_proj", "down_proj", "act_fn")):
        return None
    parts = [effective_linear(m, dtype) for m in (attn.q_proj, attn.k_proj, attn.v_proj, attn.o_proj)]
    mlp_parts = [effective_linear(m, dtype) for m in (mlp.gate_proj, mlp.up_proj, mlp.down_proj)]
    if any(p is None for p in parts + mlp_parts):
        return None
    (wq, bq), (wk, bk), (wv, bv), (wo, bo) = parts  # type: ignore[misc]
    (wg, bg), (wu, bu), (wd, bd) = mlp_parts  # type: ignore[misc]
    if bg is not None or bu is not None or bd is not None:
        return None
    qkv_bias = None
    if any(b is not None for b in (bq, bk, bv)):
        pairs = ((wq, bq), (wk, bk), (wv, bv))
        qkv_bias = torch.cat([w.new_zeros(w.shape[0]) if b is None else b.to(dtype) for w, b in pairs])
    return MergedLayer(
        qkv=torch.cat([wq.to(dtype), wk.to(dtype), wv.to(dtype)]),
        qkv_bias=qkv_bias,
        o=wo.to(dtype),
        o_bias=None if bo is None else bo.to(dtype),
        gate_up=torch.cat([wg.to(dtype), wu.to(dtype)]),
        down=wd.to(dtype),
        split=(wq.shape[0], wk.shape[0], wv.shape[0]),
    )


def merged_bytes(layers: Sequence[Any]) -> int:
    """Bytes of the projection weights of ``layers`` (what a merged copy takes)."""
    total = 0
    for layer in layers:
        attn, mlp = layer.self_attn, layer.mlp
        projections = (attn.q_proj, attn.k_proj, attn.v_proj, attn.o_proj)
        for m in (*projections, mlp.gate_proj, mlp.up_proj, mlp.down_proj):
            weight = getattr(getattr(m, "get_base_layer", lambda m=m: m)(), "weight", None)
            if weight is not None:
                total += weight.numel() * weight.element_size()
    return total


def residual_linear(
    x: torch.Tensor, inp: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
) -> torch.Tensor:
    """``x + inp Wᵀ (+ b)``, the residual accumulated by the GEMM (``addmm``: one kernel, one rounding)."""
    out = torch.addmm(x.reshape(-1, x.shape[-1]), inp.reshape(-1, inp.shape[-1]), weight.t())
    if bias is not None:
        out += bias
    return out.view(x.shape)
