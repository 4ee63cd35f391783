# A Triton kernel's compile-time parameters are annotated `tl.constexpr` and take plain ints and bools
# at launch, and a launch takes `num_warps=`, which the kernel's own signature lacks: Triton's
# `kernel[grid](...)` is typed as a call of the kernel function itself, so pyright reports every
# launch. Only those two rules are off, for this file only.
# pyright: reportArgumentType=false, reportCallIssue=false
"""RMSNorm kernels: the norm, its autograd function, and the residual add fused with the norm.

``rms_norm`` is one kernel instead of eight for transformers' ``LlamaRMSNorm``.

They round like the torch code they replace (bf16 after every product and sum).
"""

from __future__ import annotations

from typing import Any

import torch
import triton
import triton.language as tl

from sf_train.fast.attention_kernels import pow2 as _pow2

__all__ = ["RMSNormFunction", "add_rms_norm", "rms_norm"]


@triton.jit
def _rms_norm_kernel(X, W, Y, RSTD, stride_x, stride_y, n_cols, eps, BLOCK: tl.constexpr):
    row = tl.program_id(0)
    cols = tl.arange(0, BLOCK)
    mask = cols < n_cols
    x = tl.load(X + row * stride_x + cols, mask=mask, other=0.0).to(tl.float32)
    rstd = tl.rsqrt(tl.sum(x * x, 0) / n_cols + eps)
    normed = (x * rstd).to(X.dtype.element_ty).to(tl.float32)
    w = tl.load(W + cols, mask=mask, other=0.0).to(tl.float32)
    tl.store(Y + row * stride_y + cols, (w * normed).to(Y.dtype.element_ty), mask=mask)
    tl.store(RSTD + row, rstd)


@triton.jit
def _rms_norm_backward_kernel(X, W, RSTD, GY, GX, stride_x, stride_g, n_cols, BLOCK: tl.constexpr):
    row = tl.program_id(0)
    cols = tl.arange(0, BLOCK)
    mask = cols < n_cols
    x = tl.load(X + row * stride_x + cols, mask=mask, other=0.0).to(tl.float32)
    w = tl.load(W + cols, mask=mask, other=0.0).to(tl.float32)
    g = tl.load(GY + row * stride_g + cols, mask=mask, other=0.0).to(tl.float32)
    rstd = tl.load(RSTD + row)
    normed = x * rstd
    gw = g * w
    gx = rstd * (gw - normed * (tl.sum(gw * normed, 0) / n_cols))
    tl.store(GX + row * stride_x + cols, gx.to(GX.dtype.element_ty), mask=mask)


def _rms_forward(x2: torch.Tensor, weight: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    y = torch.empty(x2.shape, dtype=torch.promote_types(x2.dtype, weight.dtype), device=x2.device)
    rstd = torch.empty(x2.shape[0], dtype=torch.float32, device=x2.device)
    cols = x2.shape[-1]
    _rms_norm_kernel[(x2.shape[0],)](
        x2,
        weight,
        y,
        rstd,
        x2.stride(0),
        y.stride(0),
        cols,
        eps,
        BLOCK=_pow2(cols),
        num_warps=8 if cols >= 2048 else 4,
    )
    return y, rstd


@triton.jit
def _add_rms_norm_kernel(X, D, W, XO, Y, n_cols, eps, BLOCK: tl.constexpr):
    row = tl.program_id(0)
    cols = tl.arange(0, BLOCK)
    mask = cols < n_cols
    x = tl.load(X + row * n_cols + cols, mask=mask, other=0.0)
    dx = tl.load(D + row * n_cols + cols, mask=mask, other=0.0)
    s = (x.to(tl.float32) + dx.to(tl.float32)).to(x.dtype)
    tl.store(XO + row * n_cols + cols, s, mask=mask)
    sf = s.to(tl.float32)
    rstd = tl.rsqrt(tl.sum(sf * sf, 0) / n_cols + eps)
    normed = (sf * rstd).to(x.dtype).to(tl.float32)
    w = tl.load(W + cols, mask=mask, other=0.0).to(tl.float32)
    tl.store(Y + row * n_cols + cols, (w * normed).to(Y.dtype.element_ty), mask=mask)


def add_rms_norm(
    x: torch.Tensor, delta: torch.Tensor, weight: torch.Tensor, eps: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """``s = x + delta`` (rounded to x's dtype, as the eager add) and ``rms_norm(s)``, in one kernel.

    Args:
        x: [rows, n] contiguous, same dtype as ``delta``.
        delta: [rows, n] contiguous, same dtype as ``x``.
        weight: [n].
        eps: the norm's epsilon.

    Returns:
        ``(s, normed)``, both new tensors.
    """
    rows, n = x.shape
    x, delta = x.contiguous(), delta.contiguous()
    total = torch.empty_like(x)
    y = torch.empty(x.shape, dtype=torch.promote_types(x.dtype, weight.dtype), device=x.device)
    _add_rms_norm_kernel[(rows,)](
        x, delta, weight, total, y, n, eps, BLOCK=_pow2(n), num_warps=8 if n >= 2048 else 4
    )
    return total, y


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """``weight * (x.float() * rsqrt(mean(x²) + eps)).to(x.dtype)`` over the last dim (no autograd)."""
    return _rms_forward(x.reshape(-1, x.shape[-1]), weight, eps)[0].view(*x.shape[:-1], x.shape[-1])


class RMSNormFunction(torch.autograd.Function):
    """Fused RMSNorm with a one-kernel backward for ``x``.

    The weight gets its gradient from torch when it requires one. Saves ``x`` (its own dtype) and
    one float per row, where the eager module keeps a float32 copy of ``x``.
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
        """Normalise ``x`` over its last dim; saves ``x``, ``weight`` and the per-row rstd."""
        x2 = x.reshape(-1, x.shape[-1]).contiguous()
        y, rstd = _rms_forward(x2, weight, eps)
        ctx.save_for_backward(x2, weight, rstd)
        ctx.shape = x.shape
        return y.view(x.shape)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None, None]:
        """Gradients for ``x`` (one kernel) and ``weight`` (torch), each only when required."""
        x2, weight, rstd = ctx.saved_tensors
        g2 = grad.reshape(-1, grad.shape[-1]).contiguous()
        gx = None
        if ctx.needs_input_grad[0]:
            gx = torch.empty_like(x2)
            cols = x2.shape[-1]
            _rms_norm_backward_kernel[(x2.shape[0],)](
                x2,
                weight,
                rstd,
                g2,
                gx,
                x2.stride(0),
                g2.stride(0),
                cols,
                BLOCK=_pow2(cols),
                num_warps=8 if cols >= 2048 else 4,
            )
            gx = gx.view(ctx.shape)
        gw = None
        if ctx.needs_input_grad[1]:
            normed = (x2.float() * rstd[:, None]).to(x2.dtype).float()
            gw = (g2.float() * normed).sum(0).to(weight.dtype)
        return gx, gw, None
