# A Triton kernel's compile-time parameters are annotated `tl.constexpr` and take plain ints and bools
# at launch, and a launch takes `num_warps=`, which the kernel's own signature lacks: Triton's
# `kernel[grid](...)` is typed as a call of the kernel function itself, so pyright reports every
# launch; and a jitted helper called from a kernel is typed as the JITFunction's own call, which
# raises outside a kernel (NoReturn). Only those three rules are off, for this file only.
# pyright: reportArgumentType=false, reportCallIssue=false, reportGeneralTypeIssues=false
"""Decode attention in one launch per layer: every split of both caches, and the merge.

:func:`sf_train.fast.attention_kernels.decode_attention` launches the prefix splits, then the
generated splits, then a program per (sequence, kv head) that merges them: the short prefix
launch costs a launch's latency per layer and runs alone on a mostly idle GPU. Here one grid holds
the generated programs (first, being the longest) and the prefix programs; each writes its
partial softmax, then counts its arrival on its (prompt, kv head) counter, and the program that
arrives last merges the ``k × rep`` rows of that prompt and kv head into the output and resets the
counter (so a CUDA graph replays it). The atomic add orders the partials' stores before the count
(acquire-release at GPU scope), and the merge reads them past L1 (``.cg``).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from sf_train.fast.attention_kernels import DecodeAttentionScratch, attend_split, pow2

__all__ = ["decode_attention_one_launch"]


@triton.jit
def _store_partial(MP, LP, ACC, o, m_i, l_i, acc, row_ok, d, D: tl.constexpr):
    tl.store(MP + o, m_i, mask=row_ok)
    tl.store(LP + o, l_i, mask=row_ok)
    tl.store(ACC + o[:, None] * D + d[None, :], acc, mask=row_ok[:, None])


@triton.jit
def _split_share(ACC, row, row_ok, d, w, s, si, n_splits, D: tl.constexpr):
    """Split ``si``'s weighted values of the merged rows (``w``: each split's weight per row)."""
    ws = tl.sum(tl.where(s[None, :] == si, w, 0.0), 1)
    part = tl.load(
        ACC + (row * n_splits + si)[:, None] * D + d[None, :],
        mask=row_ok[:, None],
        other=0.0,
        cache_modifier=".cg",
    )
    return part * ws[:, None]


@triton.jit
def _merge_group(
    MP,
    LP,
    ACC,
    OUT,
    grp,
    j,
    n_splits,
    HKV: tl.constexpr,
    REP: tl.constexpr,
    KS: tl.constexpr,
    M_PRE: tl.constexpr,
    S_PAD: tl.constexpr,
    D: tl.constexpr,
    N_SPLITS: tl.constexpr,
    UNROLL: tl.constexpr,
):
    """Merge every split of the ``KS × REP`` rows of prompt ``grp`` and kv head ``j`` into ``OUT``."""
    r = tl.arange(0, M_PRE)
    row_ok = r < KS * REP
    row = (grp * KS + r // REP) * (HKV * REP) + j * REP + r % REP
    d = tl.arange(0, D)
    s = tl.arange(0, S_PAD)
    ok = row_ok[:, None] & (s < n_splits)[None, :]
    o = row[:, None] * n_splits + s[None, :]
    mp = tl.load(MP + o, mask=ok, other=float("-inf"), cache_modifier=".cg")
    lp = tl.load(LP + o, mask=ok, other=0.0, cache_modifier=".cg")
    top = tl.max(mp, 1)
    w = tl.where(mp > float("-inf"), tl.exp(mp - top[:, None]), 0.0)
    den = tl.sum(lp * w, 1)
    num = tl.zeros([M_PRE, D], tl.float32)
    if UNROLL:  # every split's load issued up front (the merge is the launch's serial tail)
        for si in tl.static_range(N_SPLITS):
            num += _split_share(ACC, row, row_ok, d, w, s, si, N_SPLITS, D)
    else:
        for si in range(0, n_splits):
            num += _split_share(ACC, row, row_ok, d, w, s, si, n_splits, D)
    out = num / den[:, None]
    tl.store(OUT + row[:, None] * D + d[None, :], out.to(OUT.dtype.element_ty), mask=row_ok[:, None])


@triton.jit
def _gen_part(
    Q,
    KG,
    VG,
    SLOT,
    MP,
    LP,
    ACC,
    pid,
    sq_b,
    sq_h,
    sg_n,
    sg_h,
    sg_t,
    n_prefix,
    n_gen,
    n_splits,
    scale,
    HKV: tl.constexpr,
    REP: tl.constexpr,
    KS: tl.constexpr,
    M_GEN: tl.constexpr,
    D: tl.constexpr,
    BLOCK_N: tl.constexpr,
    SPLIT_G: tl.constexpr,
    IEEE: tl.constexpr,
):
    """Generated split ``pid % n_gen`` of one (sequence, kv head): its partial; returns (prompt, kv head)."""
    sid = pid % n_gen
    b = (pid // n_gen) // HKV
    j = (pid // n_gen) % HKV
    r = tl.arange(0, M_GEN)
    row_ok = r < REP
    h = j * REP + r
    d = tl.arange(0, D)
    q = tl.load(Q + b * sq_b + h[:, None] * sq_h + d[None, :], mask=row_ok[:, None], other=0.0)
    m_i, l_i, acc = attend_split(
        q,
        KG + b * sg_n + j * sg_h,
        VG + b * sg_n + j * sg_h,
        sid,
        0,
        tl.load(SLOT) + 1,
        sg_t,
        d,
        scale,
        M_GEN,
        D,
        BLOCK_N,
        SPLIT_G,
        IEEE,
    )
    o = (b * (HKV * REP) + h) * n_splits + n_prefix + sid
    _store_partial(MP, LP, ACC, o, m_i, l_i, acc, row_ok, d, D)
    return b // KS, j


@triton.jit
def _prefix_part(
    Q,
    KP,
    VP,
    PSTART,
    MP,
    LP,
    ACC,
    p,
    sq_b,
    sq_h,
    sp_n,
    sp_h,
    sp_t,
    n_keys,
    n_prefix,
    n_splits,
    scale,
    HKV: tl.constexpr,
    REP: tl.constexpr,
    KS: tl.constexpr,
    M_PRE: tl.constexpr,
    D: tl.constexpr,
    BLOCK_P: tl.constexpr,
    SPLIT_P: tl.constexpr,
    IEEE: tl.constexpr,
):
    """Prefix split ``p % n_prefix`` of one (prompt, kv head) for the prompt's ``KS × REP`` queries."""
    sid = p % n_prefix
    grp = (p // n_prefix) // HKV
    j = (p // n_prefix) % HKV
    r = tl.arange(0, M_PRE)
    row_ok = r < KS * REP
    b = grp * KS + r // REP
    h = j * REP + r % REP
    d = tl.arange(0, D)
    q = tl.load(Q + b[:, None] * sq_b + h[:, None] * sq_h + d[None, :], mask=row_ok[:, None], other=0.0)
    m_i, l_i, acc = attend_split(
        q,
        KP + grp * sp_n + j * sp_h,
        VP + grp * sp_n + j * sp_h,
        sid,
        tl.load(PSTART + grp),
        n_keys,
        sp_t,
        d,
        scale,
        M_PRE,
        D,
        BLOCK_P,
        SPLIT_P,
        IEEE,
    )
    o = (b * (HKV * REP) + h) * n_splits + sid
    _store_partial(MP, LP, ACC, o, m_i, l_i, acc, row_ok, d, D)
    return grp, j


@triton.jit
def _one_launch_kernel(
    Q,
    KP,
    VP,
    KG,
    VG,
    PSTART,
    SLOT,
    MP,
    LP,
    ACC,
    COUNT,
    OUT,
    sq_b,
    sq_h,
    sp_n,
    sp_h,
    sp_t,
    sg_n,
    sg_h,
    sg_t,
    n_keys,
    n_prefix,
    n_gen,
    n_gen_programs,
    scale,
    HKV: tl.constexpr,
    REP: tl.constexpr,
    KS: tl.constexpr,
    M_PRE: tl.constexpr,
    M_GEN: tl.constexpr,
    D: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_P: tl.constexpr,
    SPLIT_P: tl.constexpr,
    SPLIT_G: tl.constexpr,
    S_PAD: tl.constexpr,
    N_SPLITS: tl.constexpr,
    UNROLL: tl.constexpr,
    IEEE: tl.constexpr,
):
    pid = tl.program_id(0)
    n_splits = n_prefix + n_gen
    if pid < n_gen_programs:  # a generated split of one (sequence, kv head)
        grp, j = _gen_part(
            Q,
            KG,
            VG,
            SLOT,
            MP,
            LP,
            ACC,
            pid,
            sq_b,
            sq_h,
            sg_n,
            sg_h,
            sg_t,
            n_prefix,
            n_gen,
            n_splits,
            scale,
            HKV,
            REP,
            KS,
            M_GEN,
            D,
            BLOCK_N,
            SPLIT_G,
            IEEE,
        )
    else:  # a prefix split of one (prompt, kv head), scored against the prompt's k x rep queries
        grp, j = _prefix_part(
            Q,
            KP,
            VP,
            PSTART,
            MP,
            LP,
            ACC,
            pid - n_gen_programs,
            sq_b,
            sq_h,
            sp_n,
            sp_h,
            sp_t,
            n_keys,
            n_prefix,
            n_splits,
            scale,
            HKV,
            REP,
            KS,
            M_PRE,
            D,
            BLOCK_P,
            SPLIT_P,
            IEEE,
        )
    arrived = tl.atomic_add(COUNT + grp * HKV + j, 1)  # acq_rel: the partials above are visible first
    if arrived == KS * n_gen + n_prefix - 1:  # the last of the group: merge, then re-arm the counter
        _merge_group(MP, LP, ACC, OUT, grp, j, n_splits, HKV, REP, KS, M_PRE, S_PAD, D, N_SPLITS, UNROLL)
        tl.atomic_xchg(COUNT + grp * HKV + j, 0)


def decode_attention_one_launch(
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
    """:func:`~sf_train.fast.attention_kernels.decode_attention` in one launch (same arguments and result).

    ``scratch.count`` (zeros, one per prompt and kv head) must not be shared by two launches in
    flight at once; each launch leaves it at zero again.
    """
    batch, heads, dim = q.shape
    groups, hkv = kp.shape[0], kp.shape[1]
    rep = heads // hkv
    s = scratch
    n_gen_programs = batch * hkv * s.n_gen
    grid = (n_gen_programs + groups * hkv * s.n_prefix,)
    _one_launch_kernel[grid](
        q, kp, vp, kg, vg, prefix_start, slot, s.m, s.l, s.acc, s.count, out,
        q.stride(0), q.stride(1),
        kp.stride(0), kp.stride(1), kp.stride(2),
        kg.stride(0), kg.stride(1), kg.stride(2),
        kp.shape[2], s.n_prefix, s.n_gen, n_gen_programs, scale,
        HKV=hkv, REP=rep, KS=k, M_PRE=max(16, pow2(k * rep)), M_GEN=max(16, pow2(rep)), D=dim,
        BLOCK_N=s.block_n, BLOCK_P=s.block_prefix, SPLIT_P=s.split_prefix, SPLIT_G=s.split_gen,
        S_PAD=max(2, pow2(s.n_splits)),
        N_SPLITS=s.n_splits, UNROLL=s.unroll_merge,
        IEEE=q.dtype == torch.float32,
        **s.launch,
    )  # fmt: skip
    return out
