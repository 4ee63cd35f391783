"""A SwiGLU MLP whose LoRA down projection does not keep its 14k-wide input for backward.

In a LoRA-tuned Llama MLP ``down(silu(gate(x)) * up(x))`` the base weights are frozen, so the
only reason to keep ``h = silu(g) * u`` (``[tokens, intermediate]``, the largest activation of
the layer) is the gradient of the down projection's LoRA ``A``. :class:`SwiGLUDownLoRA` computes
``h``, the frozen down projection and its LoRA branch in one autograd node that saves ``g`` and
``u`` (which SwiGLU's own backward needs anyway) and the rank-``r`` product ``h Aᵀ``, and
recomputes ``h`` in backward: one elementwise pass instead of ``tokens × intermediate`` bf16
values per layer kept alive (an 8B-shaped model: 28 KiB per token per layer, about a sixth of
the activations).

Same arithmetic as PEFT's ``Linear`` under autocast: ``base(h) + lora_B(lora_A(h)) · scaling``
with bf16 products and float32 adapter gradients, the LoRA term accumulated into the base product
in place (``addmm_``, as :mod:`sf_train.fast.lora` does for the other projections). Used only
for a single active, non-merged, plain LoRA adapter without dropout (:func:`lora_parts`);
anything else keeps the module's own forward.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

__all__ = ["LoRAParts", "SwiGLUDownLoRA", "lora_parts", "swiglu", "swiglu_backward"]


def swiglu(gate: torch.Tensor, up: torch.Tensor, fused: bool) -> torch.Tensor:
    """``silu(gate) * up`` rounded like the eager ops (Triton kernel when ``fused``)."""
    if fused:
        from sf_train.fast.swiglu_kernels import swiglu_forward

        return swiglu_forward(gate, up)
    return torch.nn.functional.silu(gate) * up


def swiglu_backward(
    gate: torch.Tensor, up: torch.Tensor, grad: torch.Tensor, fused: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradients of ``silu(gate) * up`` with respect to ``gate`` and ``up``."""
    if fused:
        from sf_train.fast.swiglu_kernels import swiglu_grad

        return swiglu_grad(gate, up, grad)
    with torch.enable_grad():
        g, u = gate.detach().requires_grad_(), up.detach().requires_grad_()
        out = torch.nn.functional.silu(g) * u
        dg, du = torch.autograd.grad(out, (g, u), grad)
    return dg, du


@dataclass(frozen=True, slots=True)
class LoRAParts:
    """The tensors of a plain LoRA linear layer: ``x Wᵀ + b + (x Aᵀ) Bᵀ · scaling``."""

    weight: torch.Tensor
    bias: torch.Tensor | None
    lora_a: torch.Tensor
    lora_b: torch.Tensor
    scaling: float


def lora_parts(layer: Any) -> LoRAParts | None:
    """The parts of a PEFT LoRA ``Linear`` with one active plain adapter; None for anything else."""
    try:
        from peft.tuners.lora import Linear as LoraLinear
    except ImportError:  # pragma: no cover - peft is a dependency
        return None
    if not isinstance(layer, LoraLinear) or getattr(layer, "merged", False) or layer.disable_adapters:
        return None
    if getattr(layer, "fan_in_fan_out", False):
        return None
    active = layer.active_adapters
    if len(active) != 1 or active[0] not in layer.lora_A:
        return None
    name = active[0]
    if not isinstance(layer.lora_dropout[name], torch.nn.Identity):
        return None
    if getattr(layer, "use_dora", {}).get(name, False) or getattr(layer, "lora_bias", {}).get(name, False):
        return None
    base = layer.get_base_layer()
    if type(base) is not torch.nn.Linear or base.weight.requires_grad:
        return None
    a, b = layer.lora_A[name], layer.lora_B[name]
    if (
        type(a) is not torch.nn.Linear
        or type(b) is not torch.nn.Linear
        or a.bias is not None
        or b.bias is not None
    ):
        return None
    return LoRAParts(base.weight, base.bias, a.weight, b.weight, float(layer.scaling[name]))


class SwiGLUDownLoRA(torch.autograd.Function):
    """``down(silu(g) * u)`` for a LoRA ``down`` layer, recomputing ``silu(g) * u`` in backward."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        gate: torch.Tensor,
        up: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor | None,
        lora_a: torch.Tensor,
        lora_b: torch.Tensor,
        scaling: float,
        fused: bool,
    ) -> torch.Tensor:
        """``down(silu(gate) * up)`` with the LoRA term; ``silu(gate) * up`` itself is not saved.

        ``fused`` picks the Triton SwiGLU. Saves the inputs and ``h Aᵀ`` on ``ctx``, so
        :meth:`backward` recomputes the activation.
        """
        h = swiglu(gate, up, fused)
        dtype = h.dtype
        a_c, b_c = lora_a.to(dtype), lora_b.to(dtype)
        out = torch.nn.functional.linear(h, weight.to(dtype), None if bias is None else bias.to(dtype))
        ha = h @ a_c.t()
        out.view(-1, out.shape[-1]).addmm_(ha.view(-1, ha.shape[-1]), b_c.t(), alpha=scaling)
        ctx.save_for_backward(gate, up, weight, ha, a_c, b_c)
        ctx.scaling, ctx.fused = scaling, fused
        ctx.param_dtypes = (lora_a.dtype, lora_b.dtype)
        ctx.bias_needs_grad = bias is not None and bias.requires_grad
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # type: ignore[override]
        """Gradients for ``(gate, up, weight, bias, lora_a, lora_b, scaling, fused)``.

        ``silu(gate) * up`` is recomputed here. ``weight``, ``scaling`` and ``fused`` get None,
        ``bias`` None unless it requires a gradient; the LoRA gradients come in the parameters'
        own dtypes.
        """
        gate, up, weight, ha, a_c, b_c = ctx.saved_tensors
        s = ctx.scaling
        grad = grad.to(ha.dtype)
        g2 = grad.reshape(-1, grad.shape[-1])
        d_b = (g2.t() @ ha.reshape(-1, ha.shape[-1])) * s  # [out, r]
        d_ha = (grad @ b_c).mul_(s)  # [.., r]
        h = swiglu(gate, up, ctx.fused)  # recomputed: never kept between forward and backward
        d_a = d_ha.reshape(-1, d_ha.shape[-1]).t() @ h.reshape(-1, h.shape[-1])  # [r, in]
        del h
        d_h = grad @ weight.to(grad.dtype)
        d_h.view(-1, d_h.shape[-1]).addmm_(d_ha.reshape(-1, d_ha.shape[-1]), a_c)
        d_gate, d_up = swiglu_backward(gate, up, d_h, ctx.fused)
        d_bias = g2.sum(0) if ctx.bias_needs_grad else None
        da_dtype, db_dtype = ctx.param_dtypes
        return d_gate, d_up, None, d_bias, d_a.to(da_dtype), d_b.to(db_dtype), None, None


def recomputing_mlp_forward(module: Any, x: torch.Tensor, fused: bool) -> torch.Tensor:
    """A Llama-style MLP forward through :class:`SwiGLUDownLoRA` (falls back to the module's own path)."""
    parts = lora_parts(module.down_proj)
    gate, up = module.gate_proj(x), module.up_proj(x)
    if parts is None:
        return module.down_proj(swiglu(gate, up, fused))
    return SwiGLUDownLoRA.apply(
        gate, up, parts.weight, parts.bias, parts.lora_a, parts.lora_b, parts.scaling, fused
    )
