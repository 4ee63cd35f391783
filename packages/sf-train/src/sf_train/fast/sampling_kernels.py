"""Triton kernels that sample one token per row of ``[R, V]`` logits (imported only with Triton).

Two ways to find the nucleus (top-p) cut without sorting the vocabulary. Both search the
order-preserving integer keys of the float32 (temperature-scaled) logits for the largest key whose
tail mass ``Σ_{key(x) ≥ c} exp(x − max)`` reaches ``top_p`` of the total, so the kept set is
``{x ≥ t}``: the smallest set of most likely tokens whose mass reaches ``top_p`` (tokens tied at
the cut are all kept).

* :func:`top_p_threshold`: one program per row, bisection (up to 32 passes over the row). Few
  programs when rows are few (64 rows on a 132-multiprocessor GPU), so it is latency-bound.
* :func:`sample_rows`: **split over the vocabulary**: every row is cut into ``S`` chunks, one
  program per (row, chunk), and the search is K-ary (``K = 16`` keys per pass, 8 passes instead
  of 32; after the first passes only the few tokens inside the interval are compared), each pass
  one launch whose programs first reduce the previous pass's per-chunk tail masses (in a fixed
  order: deterministic) and then count their own chunk. The last launch draws
  the token by the Gumbel-max form of the exponential race transformers' sampling is equivalent
  to (``argmax_{x ≥ t} x/T − log E``, ``E ~ Exp(1)`` from Triton's Philox, seeded from the
  device so one CUDA graph serves every step), per chunk, and a one-program-per-row kernel picks
  the best chunk. It reads the LM head's bf16 logits directly (no float32 copy, no softmax pass).

The kernels run under ``TRITON_INTERPRET=1`` on CPU tensors too (the tests).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

__all__ = ["SAMPLE_K", "SAMPLE_ROUNDS", "sample_rows", "top_p_cut", "top_p_threshold"]

SAMPLE_K = 16
"""Candidate keys per search pass of :func:`sample_rows`."""
SAMPLE_ROUNDS = 8
"""Search passes: ``SAMPLE_K ** SAMPLE_ROUNDS >= 2**32`` keys, so the last one leaves a single key."""
_BLOCK = 256
_SEED_STRIDE = 1_000_003


@triton.jit
def _float_key(x):
    """Order-preserving int32 key of float32 values (negative floats have their magnitude bits flipped)."""
    bits = x.to(tl.int32, bitcast=True)
    return tl.where(bits < 0, bits ^ 0x7FFFFFFF, bits)


@triton.jit
def _key_float(key):
    """Inverse of :func:`_float_key`."""
    bits = tl.where(key < 0, key ^ 0x7FFFFFFF, key)
    return bits.to(tl.float32, bitcast=True)


# ---- one program per row: bisection ------------------------------------------------------------


@triton.jit
def _tail_mass(base, n, m, key, BLOCK: tl.constexpr):
    total = tl.zeros([BLOCK], tl.float32)
    for start in range(0, n, BLOCK):
        offs = start + tl.arange(0, BLOCK)
        x = tl.load(base + offs, mask=offs < n, other=float("-inf"))
        total += tl.where((_float_key(x) >= key) & (offs < n), tl.exp(x - m), 0.0)
    return tl.sum(total, 0)


@triton.jit
def _top_p_threshold_kernel(L, OUT, n, stride, top_p, BLOCK: tl.constexpr):
    row = tl.program_id(0)
    base = L + row * stride
    mx = tl.full([BLOCK], float("-inf"), tl.float32)
    mn = tl.full([BLOCK], float("inf"), tl.float32)
    for start in range(0, n, BLOCK):
        offs = start + tl.arange(0, BLOCK)
        ok = offs < n
        x = tl.load(base + offs, mask=ok, other=float("-inf"))
        mx = tl.maximum(mx, x)
        mn = tl.minimum(mn, tl.where(ok, x, float("inf")))
    m = tl.max(mx, 0)
    lo = _float_key(tl.min(mn, 0)).to(tl.int64)
    hi = _float_key(m).to(tl.int64)
    target = top_p * _tail_mass(base, n, m, lo.to(tl.int32), BLOCK)
    # invariant: the tail mass at key lo reaches the target; the answer is the largest such key <= hi
    while lo < hi:
        mid = lo + (hi - lo + 1) // 2
        if _tail_mass(base, n, m, mid.to(tl.int32), BLOCK) >= target:
            lo = mid
        else:
            hi = mid - 1
    tl.store(OUT + row, _key_float(lo.to(tl.int32)))


def top_p_threshold(logits: torch.Tensor, top_p: float, out: torch.Tensor | None = None) -> torch.Tensor:
    """Per row of float32 ``logits`` [R, V], the cut ``t`` such that ``logits >= t`` is the smallest set
    of most likely tokens whose softmax mass reaches ``top_p`` (ties at the cut all kept).

    One program per row; rows may be strided (last dim contiguous). Returns ``out`` ([R] float32).
    """
    rows, n = logits.shape
    if logits.stride(1) != 1:
        logits = logits.contiguous()
    if out is None:
        out = torch.empty(rows, dtype=torch.float32, device=logits.device)
    _top_p_threshold_kernel[(rows,)](logits, out, n, logits.stride(0), float(top_p), BLOCK=2048, num_warps=8)
    return out


# ---- split over the vocabulary: K-ary search, then the race ------------------------------------


@triton.jit
def _chunk_bounds(s, n, CHUNK: tl.constexpr):
    return s * CHUNK, tl.minimum(s * CHUNK + CHUNK, n)


@triton.jit
def _scaled(base, offs, ok, temperature):
    """float32 logits over the temperature (``x / T`` as the torch code computes it), -inf off the row."""
    x = tl.load(base + offs, mask=ok, other=float("-inf")).to(tl.float32)
    return tl.where(ok, x / temperature, float("-inf"))


@triton.jit
def _stats_kernel(L, MAX, MIN, n, stride, temperature, S, CHUNK: tl.constexpr, BLOCK: tl.constexpr):
    row = tl.program_id(0)
    s = tl.program_id(1)
    lo, hi = _chunk_bounds(s, n, CHUNK)
    mx = tl.full([BLOCK], float("-inf"), tl.float32)
    mn = tl.full([BLOCK], float("inf"), tl.float32)
    for start in range(0, CHUNK, BLOCK):
        offs = lo + start + tl.arange(0, BLOCK)
        ok = offs < hi
        x = _scaled(L + row * stride, offs, ok, temperature)
        mx = tl.maximum(mx, x)
        mn = tl.minimum(mn, tl.where(ok, x, float("inf")))
    tl.store(MAX + row * S + s, tl.max(mx, 0))
    tl.store(MIN + row * S + s, tl.min(mn, 0))


@triton.jit
def _row_max(MAX, row, S, S_PAD: tl.constexpr):
    si = tl.arange(0, S_PAD)
    return tl.max(tl.load(MAX + row * S + si, mask=si < S, other=float("-inf")), 0)


@triton.jit
def _narrow(LO, HI, PART, row, r, R, S, top_p, K: tl.constexpr, S_PAD: tl.constexpr):
    """The interval ``[lo, hi]`` after pass ``r`` (its keys ``lo + j·step`` and their tail masses)."""
    lo = tl.load(LO + r * R + row)
    hi = tl.load(HI + r * R + row)
    si = tl.arange(0, S_PAD)
    j = tl.arange(0, K)
    ok = si < S
    part = tl.load(PART + ((r * R + row) * S + si[:, None]) * K + j[None, :], mask=ok[:, None], other=0.0)
    tails = tl.sum(part, 0)
    first = tl.load(PART + (row * S + si) * K, mask=ok, other=0.0)  # pass 0, key lo = the row's minimum
    target = top_p * tl.sum(first, 0)
    step = (hi - lo + K) // K
    good = (tails >= target) & (lo + j * step <= hi)
    best = tl.max(tl.where(good, j, 0), 0).to(tl.int64)
    new_lo = lo + best * step
    new_hi = tl.minimum(hi, new_lo + step - 1)
    return new_lo, new_hi


@triton.jit
def _pass_kernel(
    L,
    MAX,
    MIN,
    LO,
    HI,
    PART,
    n,
    stride,
    temperature,
    top_p,
    r,
    R,
    S,
    FIRST: tl.constexpr,
    K: tl.constexpr,
    CHUNK: tl.constexpr,
    BLOCK: tl.constexpr,
    S_PAD: tl.constexpr,
):
    row = tl.program_id(0)
    s = tl.program_id(1)
    m = _row_max(MAX, row, S, S_PAD)
    if FIRST:
        si = tl.arange(0, S_PAD)
        mn = tl.min(tl.load(MIN + row * S + si, mask=si < S, other=float("inf")), 0)
        lo = _float_key(mn).to(tl.int64)
        hi = _float_key(m).to(tl.int64)
    else:
        lo, hi = _narrow(LO, HI, PART, row, r - 1, R, S, top_p, K, S_PAD)
    if s == 0:
        tl.store(LO + r * R + row, lo)
        tl.store(HI + r * R + row, hi)
    step = (hi - lo + K) // K
    j = tl.arange(0, K)
    keys = tl.minimum(lo + j * step, hi).to(tl.int32)  # keys past hi are never chosen
    lo32 = lo.to(tl.int32)
    hi32 = hi.to(tl.int32)
    c0, c1 = _chunk_bounds(s, n, CHUNK)
    above = tl.zeros([BLOCK], tl.float32)  # keys past hi count for every candidate
    inside = tl.zeros([BLOCK, K], tl.float32)  # keys in [lo, hi] are compared with each candidate
    for start in range(0, CHUNK, BLOCK):
        offs = c0 + start + tl.arange(0, BLOCK)
        ok = offs < c1
        x = _scaled(L + row * stride, offs, ok, temperature)
        e = tl.where(ok, tl.exp(x - m), 0.0)
        kx = _float_key(x)
        above += tl.where(ok & (kx > hi32), e, 0.0)
        live = ok & (kx >= lo32) & (kx <= hi32)
        if tl.max(live.to(tl.int32), 0) > 0:  # after the first passes most blocks hold no candidate
            hit = live[:, None] & (kx[:, None] >= keys[None, :])
            inside += tl.where(hit, e[:, None], 0.0)
    acc = tl.sum(inside, 0) + tl.sum(above, 0)
    tl.store(PART + ((r * R + row) * S + s) * K + j, acc)


@triton.jit
def _race_kernel(
    L,
    MAX,
    LO,
    HI,
    PART,
    CUT,
    BEST,
    BEST_I,
    SEED,
    SLOT,
    n,
    stride,
    temperature,
    top_p,
    R,
    S,
    ROUNDS: tl.constexpr,
    NUCLEUS: tl.constexpr,
    HAS_SLOT: tl.constexpr,
    K: tl.constexpr,
    CHUNK: tl.constexpr,
    BLOCK: tl.constexpr,
    S_PAD: tl.constexpr,
):
    row = tl.program_id(0)
    s = tl.program_id(1)
    if NUCLEUS:
        cut_key, _ = _narrow(LO, HI, PART, row, ROUNDS - 1, R, S, top_p, K, S_PAD)
        cut = _key_float(cut_key.to(tl.int32))
    else:
        cut = float("-inf")
    if s == 0:
        tl.store(CUT + row, cut)
    seed = tl.load(SEED)
    if HAS_SLOT:
        seed = seed + (tl.load(SLOT) + 1) * 1_000_003
    c0, c1 = _chunk_bounds(s, n, CHUNK)
    best = tl.full([BLOCK], float("-inf"), tl.float32)
    best_i = tl.full([BLOCK], 2147483647, tl.int32)
    for start in range(0, CHUNK, BLOCK):
        offs = c0 + start + tl.arange(0, BLOCK)
        ok = offs < c1
        x = _scaled(L + row * stride, offs, ok, temperature)
        u = tl.rand(seed, row * n + offs)
        e = tl.maximum(-tl.log(u), 1e-30)  # Exp(1); u == 1 would give 0
        g = tl.where(ok & (x >= cut), x - tl.log(e), float("-inf"))
        take = g > best
        best = tl.where(take, g, best)
        best_i = tl.where(take, offs, best_i)
    top = tl.max(best, 0)
    idx = tl.min(tl.where(best == top, best_i, 2147483647), 0)
    tl.store(BEST + row * S + s, top)
    tl.store(BEST_I + row * S + s, idx)


@triton.jit
def _pick_kernel(BEST, BEST_I, OUT, S, S_PAD: tl.constexpr):
    row = tl.program_id(0)
    si = tl.arange(0, S_PAD)
    ok = si < S
    v = tl.load(BEST + row * S + si, mask=ok, other=float("-inf"))
    i = tl.load(BEST_I + row * S + si, mask=ok, other=2147483647)
    top = tl.max(v, 0)
    tl.store(OUT + row, tl.min(tl.where(v == top, i, 2147483647), 0).to(tl.int64))


def _pow2(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())


def _chunks(rows: int, n: int) -> tuple[int, int]:
    """(chunks per row, chunk length): about 1,024 programs in all, chunks a whole number of blocks."""
    want = max(1, min(triton.cdiv(1024, max(rows, 1)), triton.cdiv(n, _BLOCK)))
    chunk = triton.cdiv(triton.cdiv(n, want), _BLOCK) * _BLOCK
    return triton.cdiv(n, chunk), chunk


def sample_rows(
    logits: torch.Tensor,
    *,
    temperature: float,
    top_p: float,
    seed: torch.Tensor,
    slot: torch.Tensor | None = None,
    out: torch.Tensor | None = None,
    cut: torch.Tensor | None = None,
) -> torch.Tensor:
    """One token per row of ``logits`` [R, V] (bf16 or float32): the exponential race over
    ``softmax(logits / temperature)`` restricted to its top-p nucleus (none when ``top_p >= 1``).

    Args:
        logits: [R, V], last dim contiguous (rows may be strided).
        temperature: > 0. top_p: nucleus mass in (0, 1]; 1 keeps every token.
        seed: [1] int64 on the device: the Philox seed; with ``slot`` ([1] int64, a step counter
            read on the device) the seed of each step is ``seed + (slot + 1) · 1,000,003``.
        out: [R] int64 tokens (written and returned). cut: [R] float32, receives each row's cut
            (``-inf`` without a nucleus).

    Returns:
        ``out``. The same seed (and slot) gives the same tokens; the draw is Triton's Philox, not
        torch's generator.
    """
    rows, n = logits.shape
    if logits.stride(1) != 1:
        logits = logits.contiguous()
    device = logits.device
    s, chunk = _chunks(rows, n)
    s_pad = max(2, _pow2(s))
    nucleus = top_p < 1.0
    k, passes = SAMPLE_K, SAMPLE_ROUNDS
    mx = torch.empty(rows, s, dtype=torch.float32, device=device)
    mn = torch.empty_like(mx)
    lo = torch.empty(passes, rows, dtype=torch.int64, device=device)
    hi = torch.empty_like(lo)
    part = torch.empty(passes, rows, s, k, dtype=torch.float32, device=device)
    best = torch.empty(rows, s, dtype=torch.float32, device=device)
    best_i = torch.empty(rows, s, dtype=torch.int32, device=device)
    if out is None:
        out = torch.empty(rows, dtype=torch.int64, device=device)
    if cut is None:
        cut = torch.empty(rows, dtype=torch.float32, device=device)
    grid = (rows, s)
    temp = float(temperature)
    _stats_kernel[grid](logits, mx, mn, n, logits.stride(0), temp, s, CHUNK=chunk, BLOCK=1024)
    if nucleus:
        for r in range(passes):
            _pass_kernel[grid](
                logits,
                mx,
                mn,
                lo,
                hi,
                part,
                n,
                logits.stride(0),
                temp,
                float(top_p),
                r,
                rows,
                s,
                FIRST=r == 0,
                K=k,
                CHUNK=chunk,
                BLOCK=_BLOCK,
                S_PAD=s_pad,
            )
    _race_kernel[grid](
        logits,
        mx,
        lo,
        hi,
        part,
        cut,
        best,
        best_i,
        seed,
        seed if slot is None else slot,
        n,
        logits.stride(0),
        temp,
        float(top_p),
        rows,
        s,
        ROUNDS=passes,
        NUCLEUS=nucleus,
        HAS_SLOT=slot is not None,
        K=k,
        CHUNK=chunk,
        BLOCK=1024,
        S_PAD=s_pad,
    )
    _pick_kernel[(rows,)](best, best_i, out, s, S_PAD=s_pad)
    return out


def top_p_cut(logits: torch.Tensor, top_p: float, temperature: float = 1.0) -> torch.Tensor:
    """[R] float32: the cut :func:`sample_rows` keeps ``logits / temperature >= cut`` above (its check)."""
    cut = torch.empty(logits.shape[0], dtype=torch.float32, device=logits.device)
    seed = torch.zeros(1, dtype=torch.int64, device=logits.device)
    sample_rows(logits, temperature=temperature, top_p=top_p, seed=seed, cut=cut)
    return cut
