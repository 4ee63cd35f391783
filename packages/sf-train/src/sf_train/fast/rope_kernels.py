# A Triton kernel's compile-time parameters are annotated `tl.constexpr` and take plain ints and bools
# at launch, and a launch takes `num_warps=`, which the kernel's own signature lacks: Triton's
# `kernel[grid](...)` is typed as a call of the kernel function itself, so pyright reports every
# launch. Only those two rules are off, for this file only.
# pyright: reportArgumentType=false, reportCallIssue=false
"""Rotary embedding of q and k fused with the write of k and v into the generated cache.

``rope_and_store`` is one kernel instead of fifteen at ``slot`` (it rounds like the torch code it
replaces).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

__all__ = ["rope_and_store"]


@triton.jit
def _rotate(x, xp, sign, cos, sin):
    """``x * cos + rotate_half(x) * sin`` rounded to x's dtype after each product and the sum."""
    a = (x.to(tl.float32) * cos).to(x.dtype).to(tl.float32)
    b = (sign * xp.to(tl.float32) * sin).to(x.dtype).to(tl.float32)
    return (a + b).to(x.dtype)


@triton.jit
def _rope_store_kernel(
    Q, K, V, COS, SIN, QO, KG, VG, SLOT, sq, sk, sv, sc, skg_b, skg_h, skg_t, H: tl.constexpr, D: tl.constexpr
):
    b = tl.program_id(0)
    h = tl.program_id(1)
    d = tl.arange(0, D)
    partner = tl.where(d < D // 2, d + D // 2, d - D // 2)
    sign = tl.where(d < D // 2, -1.0, 1.0)
    cos = tl.load(COS + b * sc + d).to(tl.float32)
    sin = tl.load(SIN + b * sc + d).to(tl.float32)
    if h < H:
        x = tl.load(Q + b * sq + h * D + d)
        xp = tl.load(Q + b * sq + h * D + partner)
        tl.store(QO + (b * H + h) * D + d, _rotate(x, xp, sign, cos, sin))
    else:
        j = h - H
        slot = tl.load(SLOT)
        x = tl.load(K + b * sk + j * D + d)
        xp = tl.load(K + b * sk + j * D + partner)
        tl.store(KG + b * skg_b + j * skg_h + slot * skg_t + d, _rotate(x, xp, sign, cos, sin))
        tl.store(VG + b * skg_b + j * skg_h + slot * skg_t + d, tl.load(V + b * sv + j * D + d))


def rope_and_store(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    cos: torch.Tensor,
    sin: torch.Tensor,
    kg: torch.Tensor,
    vg: torch.Tensor,
    slot: torch.Tensor,
    *,
    heads: int,
    kv_heads: int,
    head_dim: int,
) -> torch.Tensor:
    """Rotate q and k (rotate-half RoPE), write k and v into ``kg``/``vg`` at ``slot``; return rotated q.

    Args:
        q: [B, H·D] queries (rows contiguous).
        k: [B, Hkv·D] keys (rows contiguous).
        v: [B, Hkv·D] values (rows contiguous).
        cos: [B, D] RoPE cosines.
        sin: [B, D] RoPE sines.
        kg: [B, Hkv, T, D] key cache.
        vg: [B, Hkv, T, D] value cache (the strides of ``kg``).
        slot: [1] int64 on the device, where k and v are written.
        heads: Query heads ``H``.
        kv_heads: Key/value heads ``Hkv``.
        head_dim: ``D``.

    Returns:
        [B, H, D] rotated queries.
    """
    rows = q.shape[0]
    qo = torch.empty(rows, heads, head_dim, dtype=q.dtype, device=q.device)
    _rope_store_kernel[(rows, heads + kv_heads)](
        q,
        k,
        v,
        cos,
        sin,
        qo,
        kg,
        vg,
        slot,
        q.stride(0),
        k.stride(0),
        v.stride(0),
        cos.stride(0),
        kg.stride(0),
        kg.stride(1),
        kg.stride(2),
        H=heads,
        D=head_dim,
    )
    return qo
