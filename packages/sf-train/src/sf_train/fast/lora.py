"""A PEFT LoRA linear layer as one autograd node: the LoRA product accumulated into the base GEMM.

PEFT's ``Linear.forward`` computes ``base(x) + lora_B(lora_A(x)) * scaling`` as five kernels
(base GEMM, two LoRA GEMMs, a scale and an add), so the ``[tokens, out]`` output is written and
re-read three more times, and its backward adds a scale pass over the output gradient and an add
of two ``[tokens, in]`` input gradients. :class:`LoRALinearFunction` does the same arithmetic with
the LoRA branch accumulated in the GEMM epilogue:

* forward: ``y = x Wᵀ (+ b)``, then ``y += scaling · (x Aᵀ) Bᵀ`` in place (``addmm_``);
* backward: ``d(xA) = scaling · dY B``, ``dB = scaling · dYᵀ (xA)``, ``dA = d(xA)ᵀ x``,
  ``dX = dY W``, then ``dX += d(xA) A`` in place.

It keeps what PEFT's path keeps (``x`` and the rank-``r`` product ``x Aᵀ``). Products run in the
input's dtype (bf16 under autocast, as PEFT's adapter matmuls do there); adapter gradients are
returned in the adapter's dtype (float32 with PEFT's default upcast). Same values as PEFT up to
rounding: the LoRA term is added to the base output once, in the GEMM's float32 accumulator,
instead of being rounded to the output dtype twice first.

Used only where :func:`sf_train.fast.mlp.lora_parts` recognises a single active, non-merged,
plain LoRA adapter without dropout on a frozen ``nn.Linear``; anything else (disabled adapter,
DoRA, dropout, several adapters) keeps PEFT's own forward.
"""

from __future__ import annotations

from typing import Any

import torch

from sf_train.fast.mlp import lora_parts

__all__ = ["LoRALinearFunction", "fused_lora_forward"]


def _compute_dtype(x: torch.Tensor) -> torch.dtype:
    kind = x.device.type
    if torch.is_autocast_enabled(kind):
        return torch.get_autocast_dtype(kind)
    return x.dtype


class LoRALinearFunction(torch.autograd.Function):
    """``x Wᵀ + b + (x Aᵀ) Bᵀ · scaling`` with the LoRA term accumulated into the base product."""

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any,
        x: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor | None,
        lora_a: torch.Tensor,
        lora_b: torch.Tensor,
        scaling: float,
    ) -> torch.Tensor:
        """``x Wᵀ + b + (x Aᵀ) Bᵀ · scaling``, shaped ``[..., out]`` like ``x`` with its last dim replaced.

        Computed in the autocast dtype when autocast is on, else in ``x``'s dtype; saves what
        :meth:`backward` needs on ``ctx``.
        """
        dtype = _compute_dtype(x)
        with torch.autocast(x.device.type, enabled=False):
            x2 = x.reshape(-1, x.shape[-1]).to(dtype)
            w = weight.to(dtype)
            a_c, b_c = lora_a.to(dtype), lora_b.to(dtype)
            if bias is None:
                out = x2 @ w.t()
            else:
                out = torch.addmm(bias.to(dtype), x2, w.t())
            xa = x2 @ a_c.t()
            out.addmm_(xa, b_c.t(), alpha=scaling)
        ctx.save_for_backward(x2, w, xa, a_c, b_c)
        ctx.scaling = scaling
        ctx.param_dtypes = (lora_a.dtype, lora_b.dtype)
        ctx.bias_info = None if bias is None else (bias.dtype, bias.requires_grad)
        ctx.in_shape = x.shape
        ctx.in_dtype = x.dtype
        return out.view(*x.shape[:-1], out.shape[-1])

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:  # type: ignore[override]
        """Gradients for ``(x, weight, bias, lora_a, lora_b, scaling)`` from the output's ``grad``.

        ``weight`` and ``scaling`` get None; ``x`` gets None unless it needs a gradient, ``bias``
        unless it is a parameter that requires one. ``lora_a``/``lora_b`` gradients come in the
        parameters' own dtypes, ``x``'s in its input dtype and shape.
        """
        x2, w, xa, a_c, b_c = ctx.saved_tensors
        s = ctx.scaling
        g2 = grad.reshape(-1, grad.shape[-1]).to(w.dtype)
        d_xa = (g2 @ b_c).mul_(s)  # [N, r]
        d_b = (g2.t() @ xa).mul_(s)  # [out, r]
        d_a = d_xa.t() @ x2  # [r, in]
        d_x = None
        if ctx.needs_input_grad[0]:
            d_x = g2 @ w
            d_x.addmm_(d_xa, a_c)
            d_x = d_x.view(ctx.in_shape).to(ctx.in_dtype)
        d_bias = None
        if ctx.bias_info is not None and ctx.bias_info[1]:
            d_bias = g2.sum(0).to(ctx.bias_info[0])
        da_dtype, db_dtype = ctx.param_dtypes
        return d_x, None, d_bias, d_a.to(da_dtype), d_b.to(db_dtype), None


def fused_lora_forward(module: Any, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
    """A PEFT LoRA ``Linear``'s forward through :class:`LoRALinearFunction` (its own forward otherwise)."""
    parts = None if args or kwargs else lora_parts(module)
    if parts is not None and not torch.is_autocast_enabled(x.device.type) and x.dtype != parts.lora_a.dtype:
        parts = None  # PEFT would run the adapter in its own dtype here: keep its forward
    if parts is None:
        return type(module).forward(module, x, *args, **kwargs)
    return LoRALinearFunction.apply(x, parts.weight, parts.bias, parts.lora_a, parts.lora_b, parts.scaling)
