# A Triton kernel's compile-time parameters are annotated `tl.constexpr` and take plain ints and bools
# at launch, and a launch takes `num_warps=`, which the kernel's own signature lacks: Triton's
# `kernel[grid](...)` is typed as a call of the kernel function itself, so pyright reports every
# launch; and a jitted helper called from a kernel is typed as the JITFunction's own call, which
# raises outside a kernel (NoReturn). Only those three rules are off, for this file only.
# pyright: reportArgumentType=false, reportCallIssue=false, reportGeneralTypeIssues=false
"""Flash-decoding attention of the decode path (imported only when Triton is installed).

``decode_attention`` is one new token per sequence against two caches:

* the **prefix** cache, one per prompt, ``[G, Hkv, P, D]`` with left padding (keys before
  ``prefix_start[g]`` are ignored), shared by the ``k`` samples of that prompt: one program loads
  a block of prefix keys once and scores it against all ``k × rep`` queries of the group
  (``rep = heads / kv_heads``: GQA is never expanded);
* the **generated** cache, one per sequence, ``[B, Hkv, T, D]``, valid up to ``slot`` (read
  from device memory, so one CUDA graph serves every step and only the filled part is read).

Each (group or sequence, kv head, split) program writes a partial softmax (max, sum, weighted
values) and a second kernel merges the splits. Scores and softmax are fp32; the value product
takes the cache dtype (what flash attention does). The kernels also run under
``TRITON_INTERPRET=1`` on CPU tensors, which the tests use.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

__all__ = ["DecodeAttentionScratch", "attend_split", "decode_attention", "pow2"]


@triton.jit
def _attend_block(q, kbase, vbase, n, valid, sk_t, d, scale, m_i, l_i, acc, IEEE: tl.constexpr):
    kb = tl.load(kbase + n[:, None] * sk_t + d[None, :], mask=valid[:, None], other=0.0)
    if IEEE:  # float32 caches: full-precision products (Triton would use TF32)
        s = tl.dot(q, tl.trans(kb), input_precision="ieee").to(tl.float32) * scale
    else:
        s = tl.dot(q, tl.trans(kb)).to(tl.float32) * scale
    s = tl.where(valid[None, :], s, float("-inf"))
    m_new = tl.maximum(m_i, tl.max(s, 1))
    m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)  # a fully masked block changes nothing
    alpha = tl.exp(m_i - m_safe)
    p = tl.exp(s - m_safe[:, None])
    l_i = l_i * alpha + tl.sum(p, 1)
    vb = tl.load(vbase + n[:, None] * sk_t + d[None, :], mask=valid[:, None], other=0.0)
    if IEEE:
        pv = tl.dot(p.to(vb.dtype), vb, input_precision="ieee")
    else:
        pv = tl.dot(p.to(vb.dtype), vb)
    acc = acc * alpha[:, None] + pv.to(tl.float32)
    return m_new, l_i, acc


@triton.jit
def attend_split(
    q,
    kbase,
    vbase,
    sid,
    lo,
    hi,
    sk_t,
    d,
    scale,
    M_PAD: tl.constexpr,
    D: tl.constexpr,
    BLOCK_N: tl.constexpr,
    SPLIT: tl.constexpr,
    IEEE: tl.constexpr,
):
    """Online-softmax state (max, sum, weighted values) of ``q`` over keys ``[lo, hi)`` of split ``sid``."""
    start = tl.maximum(sid * SPLIT, lo)
    end = tl.minimum(sid * SPLIT + SPLIT, hi)
    m_i = tl.full([M_PAD], float("-inf"), tl.float32)
    l_i = tl.zeros([M_PAD], tl.float32)
    acc = tl.zeros([M_PAD, D], tl.float32)
    for n0 in range(start, end, BLOCK_N):  # only the valid part of the split (the interpreter too)
        n = n0 + tl.arange(0, BLOCK_N)
        valid = n < end
        m_i, l_i, acc = _attend_block(q, kbase, vbase, n, valid, sk_t, d, scale, m_i, l_i, acc, IEEE)
    return m_i, l_i, acc


@triton.jit
def _partial_kernel(
    Q,
    K,
    V,
    PSTART,
    SLOT,
    MP,
    LP,
    ACC,
    sq_b,
    sq_h,
    sk_n,
    sk_h,
    sk_t,
    n_keys,
    split_base,
    first_split,
    n_splits_total,
    scale,
    HKV: tl.constexpr,
    REP: tl.constexpr,
    KS: tl.constexpr,
    ROWS: tl.constexpr,
    M_PAD: tl.constexpr,
    D: tl.constexpr,
    BLOCK_N: tl.constexpr,
    SPLIT: tl.constexpr,
    IS_GEN: tl.constexpr,
    IEEE: tl.constexpr,
):
    pid = tl.program_id(0)
    sid = tl.program_id(1) + first_split
    grp = pid // HKV
    j = pid % HKV
    r = tl.arange(0, M_PAD)
    row_ok = r < ROWS
    if IS_GEN:
        b = grp + r * 0
        h = j * REP + r
        lo = 0
        hi = tl.load(SLOT) + 1
    else:
        b = grp * KS + r // REP
        h = j * REP + r % REP
        lo = tl.load(PSTART + grp)
        hi = n_keys
    d = tl.arange(0, D)
    q = tl.load(Q + b[:, None] * sq_b + h[:, None] * sq_h + d[None, :], mask=row_ok[:, None], other=0.0)
    kbase = K + grp * sk_n + j * sk_h
    vbase = V + grp * sk_n + j * sk_h
    m_i, l_i, acc = attend_split(q, kbase, vbase, sid, lo, hi, sk_t, d, scale, M_PAD, D, BLOCK_N, SPLIT, IEEE)
    o = (b * (HKV * REP) + h) * n_splits_total + split_base + sid
    tl.store(MP + o, m_i, mask=row_ok)
    tl.store(LP + o, l_i, mask=row_ok)
    tl.store(ACC + o[:, None] * D + d[None, :], acc, mask=row_ok[:, None])


@triton.jit
def _gen_final_kernel(
    Q,
    K,
    V,
    SLOT,
    MP,
    LP,
    ACC,
    OUT,
    sq_b,
    sq_h,
    sk_n,
    sk_h,
    sk_t,
    skip,
    n_splits_total,
    scale,
    HKV: tl.constexpr,
    REP: tl.constexpr,
    M_PAD: tl.constexpr,
    D: tl.constexpr,
    BLOCK_N: tl.constexpr,
    SPLIT: tl.constexpr,
    S_PAD: tl.constexpr,
    IEEE: tl.constexpr,
):
    """Generated split 0 of one (sequence, kv head), merged with every other split's partial.

    The others are the prefix and later generated splits, written by an earlier launch (``skip`` is
    split 0's own slot); the merge goes straight into the output: no separate merge launch.
    """
    pid = tl.program_id(0)
    b = pid // HKV
    j = pid % HKV
    r = tl.arange(0, M_PAD)
    row_ok = r < REP
    h = j * REP + r
    d = tl.arange(0, D)
    q = tl.load(Q + b * sq_b + h[:, None] * sq_h + d[None, :], mask=row_ok[:, None], other=0.0)
    kbase = K + b * sk_n + j * sk_h
    vbase = V + b * sk_n + j * sk_h
    hi = tl.load(SLOT) + 1
    m_g, l_g, acc = attend_split(q, kbase, vbase, 0, 0, hi, sk_t, d, scale, M_PAD, D, BLOCK_N, SPLIT, IEEE)
    s = tl.arange(0, S_PAD)
    ok = row_ok[:, None] & ((s < n_splits_total) & (s != skip))[None, :]
    o = (b * (HKV * REP) + h)[:, None] * n_splits_total + s[None, :]
    mp = tl.load(MP + o, mask=ok, other=float("-inf"))
    lp = tl.load(LP + o, mask=ok, other=0.0)
    top = tl.maximum(tl.max(mp, 1), m_g)
    w = tl.where(mp > float("-inf"), tl.exp(mp - top[:, None]), 0.0)
    wg = tl.where(m_g > float("-inf"), tl.exp(m_g - top), 0.0)
    den = tl.sum(lp * w, 1) + l_g * wg
    num = acc * wg[:, None]
    for si in range(0, n_splits_total):
        ws = tl.sum(tl.where(s[None, :] == si, w, 0.0), 1)  # zero for split 0's own slot and padding
        part = tl.load(
            ACC + ((b * (HKV * REP) + h) * n_splits_total + si)[:, None] * D + d[None, :],
            mask=row_ok[:, None] & (si != skip),
            other=0.0,
        )
        num += part * ws[:, None]
    out = num / den[:, None]
    tl.store(
        OUT + (b * (HKV * REP) + h)[:, None] * D + d[None, :],
        out.to(OUT.dtype.element_ty),
        mask=row_ok[:, None],
    )


@triton.jit
def _merge_kernel(MP, LP, ACC, OUT, n_splits, S_PAD: tl.constexpr, D: tl.constexpr):
    row = tl.program_id(0)
    s = tl.arange(0, S_PAD)
    ok = s < n_splits
    m = tl.load(MP + row * n_splits + s, mask=ok, other=float("-inf"))
    lsum = tl.load(LP + row * n_splits + s, mask=ok, other=0.0)
    top = tl.max(m, 0)
    w = tl.where(ok & (m > float("-inf")), tl.exp(m - top), 0.0)
    d = tl.arange(0, D)
    acc = tl.load(ACC + (row * n_splits + s)[:, None] * D + d[None, :], mask=ok[:, None], other=0.0)
    num = tl.sum(acc * w[:, None], 0)
    den = tl.sum(lsum * w, 0)
    tl.store(OUT + row * D + d, (num / den).to(OUT.dtype.element_ty))


def pow2(n: int) -> int:
    """The least power of two >= ``n`` (1 for n <= 1)."""
    return 1 << max(0, (n - 1).bit_length())


class DecodeAttentionScratch:
    """Split sizes and fp32 scratch buffers for :func:`decode_attention` (allocated once per layout).

    Args:
        batch: Sequences ``B = groups × k``.
        heads: Query heads ``H``; head_dim ``D`` (a power of two, ≥ 16).
        prefix_len: Prefix cache length ``P``; gen_len: generated cache length ``T``.
        device: Where the buffers live.
        split_prefix, split_gen: Keys per split of the prefix and the generated cache.
        block_n: Keys per inner block.
        block_prefix: Keys per inner block in the prefix splits (None: ``block_n``).
        fused_merge: The program of generated split 0 merges every split into the output (two or
            three launches per layer); False: a separate merge launch (three).
        one_launch: Every split and the merge in one launch per layer
            (:mod:`sf_train.fast.attention_one_launch`; ``fused_merge`` is then moot).
        unroll_merge: In one launch, the merge's loop over the splits unrolled, so that every
            split's load is issued at once. Off by default: on the H200 it was 5% slower at
            128-key prefix splits and no faster at 256 (``2026-12-04-h200-decode_kernel_sweep_one_launch``).
        num_warps, num_stages: Launch options of the attention kernels (None: Triton's defaults,
            4 warps and 3 stages on Hopper).
    """

    def __init__(
        self,
        *,
        batch: int,
        heads: int,
        head_dim: int,
        prefix_len: int,
        gen_len: int,
        device: torch.device,
        split_prefix: int = 128,
        split_gen: int = 256,
        block_n: int = 32,
        block_prefix: int | None = None,
        fused_merge: bool = True,
        one_launch: bool = False,
        unroll_merge: bool = False,
        num_warps: int | None = None,
        num_stages: int | None = None,
    ) -> None:
        self.split_prefix, self.split_gen, self.block_n = split_prefix, split_gen, block_n
        self.block_prefix = block_n if block_prefix is None else block_prefix
        self.launch = {
            key: value
            for key, value in (("num_warps", num_warps), ("num_stages", num_stages))
            if value is not None
        }
        self.fused_merge, self.one_launch, self.unroll_merge = fused_merge, one_launch, unroll_merge
        self.n_prefix = -(-prefix_len // split_prefix)
        self.n_gen = -(-gen_len // split_gen)
        self.n_splits = self.n_prefix + self.n_gen
        rows = batch * heads * self.n_splits
        self.m = torch.empty(rows, dtype=torch.float32, device=device)
        self.l = torch.empty(rows, dtype=torch.float32, device=device)
        self.acc = torch.empty(rows * head_dim, dtype=torch.float32, device=device)
        self.count = torch.zeros(batch * heads, dtype=torch.int32, device=device)  # arrivals, one-launch


def decode_attention(
    q: torch.Tensor,
    kp: torch.Tensor,
    vp: torch.Tensor,
    prefix_start: torch.Tensor,
    kg: torch.Tensor,
    vg: torch.Tensor,
    slot: torch.Tensor,
    *,
    k: int,
    scale: float,
    scratch: DecodeAttentionScratch,
    out: torch.Tensor,
) -> torch.Tensor:
    """Attention of one new token per sequence over its prompt's prefix cache and its own cache.

    Args:
        q: [B, H, D] queries (RoPE applied), contiguous; ``B = G × k``, rows of one prompt adjacent.
        kp: [G, Hkv, P, D] prefix keys (last dim contiguous).
        vp: [G, Hkv, P, D] prefix values (last dim contiguous).
        prefix_start: [G] int first valid prefix position (left padding before it).
        kg: [B, Hkv, T, D] generated keys; positions ``0..slot`` are valid.
        vg: [B, Hkv, T, D] generated values, as ``kg``.
        slot: [1] int64 on the device, the newest valid generated position.
        k: Samples per prompt.
        scale: Softmax scale.
        scratch: Buffers from :class:`DecodeAttentionScratch`.
        out: [B, H, D] output, written and returned.
    """
    batch, heads, dim = q.shape
    groups, hkv = kp.shape[0], kp.shape[1]
    rep = heads // hkv
    s = scratch
    common = dict(HKV=hkv, REP=rep, KS=k, D=dim, BLOCK_N=s.block_n, IEEE=q.dtype == torch.float32)
    _partial_kernel[(groups * hkv, s.n_prefix)](
        q,
        kp,
        vp,
        prefix_start,
        slot,
        s.m,
        s.l,
        s.acc,
        q.stride(0),
        q.stride(1),
        kp.stride(0),
        kp.stride(1),
        kp.stride(2),
        kp.shape[2],
        0,
        0,
        s.n_splits,
        scale,
        ROWS=k * rep,
        M_PAD=max(16, pow2(k * rep)),
        SPLIT=s.split_prefix,
        IS_GEN=False,
        **{**common, "BLOCK_N": s.block_prefix},
        **s.launch,
    )
    first_gen = 1 if s.fused_merge else 0
    if s.n_gen > first_gen:
        _partial_kernel[(batch * hkv, s.n_gen - first_gen)](
            q,
            kg,
            vg,
            prefix_start,
            slot,
            s.m,
            s.l,
            s.acc,
            q.stride(0),
            q.stride(1),
            kg.stride(0),
            kg.stride(1),
            kg.stride(2),
            kg.shape[2],
            s.n_prefix,
            first_gen,
            s.n_splits,
            scale,
            ROWS=rep,
            M_PAD=max(16, pow2(rep)),
            SPLIT=s.split_gen,
            IS_GEN=True,
            **common,
            **s.launch,
        )
    if not s.fused_merge:
        _merge_kernel[(batch * heads,)](
            s.m, s.l, s.acc, out, s.n_splits, S_PAD=max(2, pow2(s.n_splits)), D=dim
        )
        return out
    del common["KS"]
    _gen_final_kernel[(batch * hkv,)](
        q,
        kg,
        vg,
        slot,
        s.m,
        s.l,
        s.acc,
        out,
        q.stride(0),
        q.stride(1),
        kg.stride(0),
        kg.stride(1),
        kg.stride(2),
        s.n_prefix,
        s.n_splits,
        scale,
        M_PAD=max(16, pow2(rep)),
        SPLIT=s.split_gen,
        S_PAD=max(2, pow2(s.n_splits)),
        **common,
        **s.launch,
    )
    return out
