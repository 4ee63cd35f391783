"""The decoder's attention of one new token per row over the shared prefix cache and the row's own.

:func:`attend_torch` is plain torch matmuls over a fixed-width bucket of the generated cache (any
device; what the CPU tests run); :func:`attend_triton` calls the flash-decoding kernels
(:func:`sf_train.fast.attention_kernels.decode_attention`, or in one launch per layer
:func:`sf_train.fast.attention_one_launch.decode_attention_one_launch`; both read only the filled
part of the cache).
Both group the queries per KV head (GQA is never expanded) and take the softmax in float32.
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["attend_torch", "attend_triton"]


def attend_torch(
    lay: Any, layer: int, q: torch.Tensor, width: int, *, scale: float, rep: int
) -> torch.Tensor:
    """Attention of ``q`` [B, H, D] for ``layer`` over the layout's caches; returns [B, H, D].

    Args:
        lay: The decoder's layout (caches ``kp/vp`` [L, G, Hkv, P, D], ``kg/vg`` [L, B, Hkv, T, D],
            ``prefix_valid`` [G, P], ``slot``).
        layer: Layer index.
        q: Queries with RoPE applied.
        width: Generated positions read (a bucket; those after ``slot`` are masked).
        scale: Softmax scale.
        rep: Query heads per KV head.
    """
    g, k = lay.groups, lay.k
    rows, heads, dim = q.shape
    hkv = heads // rep
    dtype = q.dtype
    neg = float("-inf")
    qg = q.reshape(g, k, hkv, rep, dim).transpose(1, 2).reshape(g, hkv, k * rep, dim)
    sp = torch.matmul(qg, lay.kp[layer].transpose(-1, -2)).float() * scale
    sp = sp.masked_fill(~lay.prefix_valid[:, None, None, :], neg)
    mp = sp.amax(-1, keepdim=True)
    ep = torch.exp(sp - mp)
    lp = ep.sum(-1, keepdim=True)
    op = torch.matmul(ep.to(dtype), lay.vp[layer])

    def per_row(t: torch.Tensor) -> torch.Tensor:
        return t.reshape(g, hkv, k, rep, t.shape[-1]).transpose(1, 2).reshape(rows, hkv, rep, t.shape[-1])

    op, mp, lp = per_row(op).float(), per_row(mp), per_row(lp)
    qb = q.reshape(rows, hkv, rep, dim)
    sg = torch.matmul(qb, lay.kg[layer][:, :, :width].transpose(-1, -2)).float() * scale
    sg = sg.masked_fill(lay.arange[:width] > lay.slot, neg)
    mg = sg.amax(-1, keepdim=True)
    eg = torch.exp(sg - mg)
    lg = eg.sum(-1, keepdim=True)
    og = torch.matmul(eg.to(dtype), lay.vg[layer][:, :, :width]).float()
    top = torch.maximum(mp, mg)
    ap, ag = torch.exp(mp - top), torch.exp(mg - top)
    out = (op * ap + og * ag) / (lp * ap + lg * ag)
    return out.to(dtype).reshape(rows, heads, dim)


def attend_triton(lay: Any, layer: int, q: torch.Tensor, *, scale: float) -> torch.Tensor:
    """The same attention through the Triton kernels (``lay.scratch`` holds their buffers)."""
    from sf_train.fast.attention_kernels import decode_attention
    from sf_train.fast.attention_one_launch import decode_attention_one_launch

    assert lay.scratch is not None
    attend = decode_attention_one_launch if lay.scratch.one_launch else decode_attention
    return attend(
        q.contiguous(),
        lay.kp[layer],
        lay.vp[layer],
        lay.prefix_start,
        lay.kg[layer],
        lay.vg[layer],
        lay.slot,
        k=lay.k,
        scale=scale,
        scratch=lay.scratch,
        out=lay.attn_out,
    )
