# A Triton kernel's compile-time parameters are annotated `tl.constexpr` and take plain ints and bools
# at launch, and a launch takes `num_warps=`, which the kernel's own signature lacks: Triton's
# `kernel[grid](...)` is typed as a call of the kernel function itself, so pyright reports every
# launch. Only those two rules are off, for this file only.
# pyright: reportArgumentType=false, reportCallIssue=false
"""SwiGLU kernels: ``silu(gate) * up`` forward and backward, and the fused gate/up split.

Training uses the autograd function; ``swiglu_split`` serves the decode step's fused gate/up
projection.
"""

from __future__ import annotations

from typing import Any

import torch
import triton
import triton.language as tl

__all__ = ["SwiGLUFunction", "swiglu_forward", "swiglu_grad", "swiglu_split"]


@triton.jit
def _swiglu_kernel(G, U, H, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    g = tl.load(G + offs, mask=mask, other=0.0)
    u = tl.load(U + offs, mask=mask, other=0.0)
    gf = g.to(tl.float32)
    act = (gf * tl.sigmoid(gf)).to(g.dtype).to(tl.float32)
    tl.store(H + offs, (act * u.to(tl.float32)).to(H.dtype.element_ty), mask=mask)


@triton.jit
def _swiglu_backward_kernel(G, U, DH, DG, DU, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    g = tl.load(G + offs, mask=mask, other=0.0).to(tl.float32)
    u = tl.load(U + offs, mask=mask, other=0.0).to(tl.float32)
    dh = tl.load(DH + offs, mask=mask, other=0.0).to(tl.float32)
    sig = tl.sigmoid(g)
    act = g * sig
    tl.store(DU + offs, (dh * act).to(DU.dtype.element_ty), mask=mask)
    tl.store(DG + offs, (dh * u * (sig + act * (1.0 - sig))).to(DG.dtype.element_ty), mask=mask)


@triton.jit
def _swiglu_split_kernel(GU, H, n_cols, stride_gu, stride_h, BLOCK: tl.constexpr):
    row = tl.program_id(0)
    cols = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    mask = cols < n_cols
    g = tl.load(GU + row * stride_gu + cols, mask=mask, other=0.0)
    u = tl.load(GU + row * stride_gu + n_cols + cols, mask=mask, other=0.0)
    gf = g.to(tl.float32)
    act = (gf * tl.sigmoid(gf)).to(g.dtype).to(tl.float32)
    tl.store(H + row * stride_h + cols, (act * u.to(tl.float32)).to(H.dtype.element_ty), mask=mask)


def swiglu_split(gate_up: torch.Tensor) -> torch.Tensor:
    """``silu(g) * u`` of a ``[rows, 2I]`` tensor holding ``[g | u]`` per row, in one kernel.

    The input is the output of one fused gate/up projection; rounds like the eager ops; returns
    ``[rows, I]``.
    """
    rows, width = gate_up.shape
    n = width // 2
    if gate_up.stride(1) != 1:
        gate_up = gate_up.contiguous()
    out = torch.empty(rows, n, dtype=gate_up.dtype, device=gate_up.device)
    _swiglu_split_kernel[(rows, triton.cdiv(n, 1024))](
        gate_up, out, n, gate_up.stride(0), out.stride(0), BLOCK=1024
    )
    return out


def swiglu_forward(gate: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    """``silu(gate) * up`` in one kernel, rounding like the eager ops."""
    gate, up = gate.contiguous(), up.contiguous()
    out = torch.empty(gate.shape, dtype=torch.promote_types(gate.dtype, up.dtype), device=gate.device)
    n = gate.numel()
    _swiglu_kernel[(triton.cdiv(n, 1024),)](gate, up, out, n, BLOCK=1024)
    return out


def swiglu_grad(
    gate: torch.Tensor, up: torch.Tensor, grad: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradients of ``silu(gate) * up`` with respect to ``gate`` and ``up``, in one kernel."""
    gate, up, grad = gate.contiguous(), up.contiguous(), grad.contiguous()
    dg, du = torch.empty_like(gate), torch.empty_like(up)
    n = gate.numel()
    _swiglu_backward_kernel[(triton.cdiv(n, 1024),)](gate, up, grad, dg, du, n, BLOCK=1024)
    return dg, du


class SwiGLUFunction(torch.autograd.Function):
    """``silu(gate) * up`` in one kernel each way, rounding like the eager ops.

    Saves gate and up only (the eager pair also keeps ``silu(gate)``).
    """

    @staticmethod
    def forward(ctx: Any, gate: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
        """``silu(gate) * up``; saves ``gate`` and ``up``."""
        gate, up = gate.contiguous(), up.contiguous()
        ctx.save_for_backward(gate, up)
        return swiglu_forward(gate, up)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Gradients for ``gate`` and ``up``, in one kernel."""
        gate, up = ctx.saved_tensors
        return swiglu_grad(gate, up, grad)
