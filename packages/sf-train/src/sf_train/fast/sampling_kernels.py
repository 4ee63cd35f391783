"""Triton kernels that sample one token per row of ``[R, V]`` logits (imported only with Triton).

Two ways to find the nucleus (top-p) cut without sorting the vocabulary. Both search the
order-preserving integer keys of the float32 (temperature-scaled) logits for the largest key whose
tail mass ``Σ_{key(x) ≥ c} exp(x − max)`` reaches ``top_p`` of the total, so the kept set is
``{x ≥ t}``: the smallest set of most likely tokens whose mass reaches ``top_p`` (tokens tied at
the cut are all kept).

* :func:`top_p_threshold`: one program per row, bisection (up to 32 passes over the row). Few
  programs when rows are few (64 rows on a 132-multiprocessor GPU), so it is latency-bound.
* :func:`sample_rows`: **split over the vocabulary** where it can be: every row is cut into ``S``
  chunks, one program per (row, chunk), for the row's maximum, then for its candidates: the tokens
  at or above ``max + log((1 − top_p) / V) − 1`` (together, the others hold less than
  ``1 − top_p`` of the mass, so every nucleus token is one), written compactly in vocabulary order
  (deterministic: each chunk's offset is the count of the chunks before it). The bisection then
  runs over the candidates only, one program per row: a few hundred values for a peaked
  distribution, at worst the whole row. The last launch draws the token by the Gumbel-max form of
  the exponential race that transformers' sampling is equivalent to (``argmax_{x ≥ t} x/T − log E``,
  ``E ~ Exp(1)`` from Triton's Philox, seeded from the device so one CUDA graph serves every
  step), per chunk, and a one-program-per-row kernel picks the best chunk. It reads the LM head's
  bf16 logits as they are (no float32 copy, no softmax pass).

The kernels run under ``TRITON_INTERPRET=1`` on CPU tensors too (the tests).
"""

# Triton types a launch `kernel[grid](...)` as a call of the kernel itself, so its constexpr
# parameters and launch options (num_warps) read as wrong arguments to pyright; and a jitted helper
# called from a kernel is typed as the JITFunction's own call, which raises outside a kernel
# (NoReturn). Only those three rules are off, for this file only.
# pyright: reportArgumentType=false, reportCallIssue=false, reportGeneralTypeIssues=false

from __future__ import annotations

import math
import os

import torch
import triton
import triton.language as tl

__all__ = ["sample_rows", "top_p_cut", "top_p_threshold"]

_BLOCK = 256
_INTERPRET = os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


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
    """Per row of float32 ``logits`` [R, V], the top-p cut ``t``.

    ``logits >= t`` is the smallest set of most likely tokens whose softmax mass reaches ``top_p``
    (ties at the cut all kept).

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
def _count_kernel(
    L,
    MAX,
    COUNT,
    ZP,
    n,
    stride,
    temperature,
    log_floor,
    S,
    CHUNK: tl.constexpr,
    BLOCK: tl.constexpr,
    S_PAD: tl.constexpr,
):
    """Per chunk: the tokens at or above the row's floor (candidates) and ``Σ exp(x − max)``."""
    row = tl.program_id(0)
    s = tl.program_id(1)
    m = _row_max(MAX, row, S, S_PAD)
    floor = m + log_floor
    c0, c1 = _chunk_bounds(s, n, CHUNK)
    count = tl.zeros([BLOCK], tl.int32)
    z = tl.zeros([BLOCK], tl.float32)
    for start in range(0, CHUNK, BLOCK):
        offs = c0 + start + tl.arange(0, BLOCK)
        ok = offs < c1
        x = _scaled(L + row * stride, offs, ok, temperature)
        count += (ok & (x >= floor)).to(tl.int32)
        z += tl.where(ok, tl.exp(x - m), 0.0)
    tl.store(COUNT + row * S + s, tl.sum(count, 0))
    tl.store(ZP + row * S + s, tl.sum(z, 0))


@triton.jit
def _compact_kernel(
    L,
    MAX,
    COUNT,
    CAND,
    n,
    stride,
    temperature,
    log_floor,
    S,
    CHUNK: tl.constexpr,
    BLOCK: tl.constexpr,
    S_PAD: tl.constexpr,
):
    """Write each row's candidates, chunk by chunk in vocabulary order, to ``CAND[row, :]``."""
    row = tl.program_id(0)
    s = tl.program_id(1)
    m = _row_max(MAX, row, S, S_PAD)
    floor = m + log_floor
    si = tl.arange(0, S_PAD)
    at = tl.sum(tl.load(COUNT + row * S + si, mask=si < s, other=0), 0)
    c0, c1 = _chunk_bounds(s, n, CHUNK)
    for start in range(0, CHUNK, BLOCK):
        offs = c0 + start + tl.arange(0, BLOCK)
        ok = offs < c1
        x = _scaled(L + row * stride, offs, ok, temperature)
        keep = ok & (x >= floor)
        pos = at + tl.cumsum(keep.to(tl.int32), 0) - 1
        tl.store(CAND + row * n + pos, x, mask=keep)
        at += tl.sum(keep.to(tl.int32), 0)


@triton.jit
def _cand_tail(base, span, n_cand, m, key, BLOCK: tl.constexpr):
    total = tl.zeros([BLOCK], tl.float32)
    for start in range(0, span, BLOCK):
        offs = start + tl.arange(0, BLOCK)
        ok = offs < n_cand
        x = tl.load(base + offs, mask=ok, other=float("-inf"))
        total += tl.where((_float_key(x) >= key) & ok, tl.exp(x - m), 0.0)
    return tl.sum(total, 0)


@triton.jit
def _cut_kernel(
    CAND, MAX, COUNT, ZP, CUT, n, top_p, S, BLOCK: tl.constexpr, S_PAD: tl.constexpr, INTERPRET: tl.constexpr
):
    """Bisection over the row's candidates only (every token of the nucleus is one of them)."""
    row = tl.program_id(0)
    m = _row_max(MAX, row, S, S_PAD)
    si = tl.arange(0, S_PAD)
    n_cand = tl.sum(tl.load(COUNT + row * S + si, mask=si < S, other=0), 0)
    target = top_p * tl.sum(tl.load(ZP + row * S + si, mask=si < S, other=0.0), 0)
    base = CAND + row * n
    span = n if INTERPRET else n_cand  # the interpreter cannot loop to a device value
    mn = tl.full([BLOCK], float("inf"), tl.float32)
    for start in range(0, span, BLOCK):
        offs = start + tl.arange(0, BLOCK)
        mn = tl.minimum(mn, tl.load(base + offs, mask=offs < n_cand, other=float("inf")))
    lo = _float_key(tl.min(mn, 0)).to(tl.int64)
    hi = _float_key(m).to(tl.int64)
    # invariant: the tail mass at key lo reaches the target; the answer is the largest such key <= hi
    while lo < hi:
        mid = lo + (hi - lo + 1) // 2
        if _cand_tail(base, span, n_cand, m, mid.to(tl.int32), BLOCK) >= target:
            lo = mid
        else:
            hi = mid - 1
    tl.store(CUT + row, _key_float(lo.to(tl.int32)))


@triton.jit
def _race_kernel(
    L,
    CUT,
    BEST,
    BEST_I,
    SEED,
    SLOT,
    n,
    stride,
    temperature,
    S,
    NUCLEUS: tl.constexpr,
    HAS_SLOT: tl.constexpr,
    CHUNK: tl.constexpr,
    BLOCK: tl.constexpr,
):
    row = tl.program_id(0)
    s = tl.program_id(1)
    if NUCLEUS:
        cut = tl.load(CUT + row)
    else:
        cut = float("-inf")
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
    return int(triton.cdiv(n, chunk)), int(chunk)


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
    """One token per row of ``logits`` [R, V] (bf16 or float32), drawn by an exponential race.

    The race is over ``softmax(logits / temperature)`` restricted to its top-p nucleus (none when
    ``top_p >= 1``).

    Args:
        logits: [R, V], last dim contiguous (rows may be strided).
        temperature: > 0.
        top_p: nucleus mass in (0, 1]; 1 keeps every token.
        seed: [1] int64 on the device: the Philox seed; with ``slot`` the seed of each step is
            ``seed + (slot + 1) · 1,000,003``.
        slot: [1] int64, a step counter read on the device (see ``seed``).
        out: [R] int64 tokens (written and returned).
        cut: [R] float32, receives each row's cut (``-inf`` without a nucleus).

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
    mx = torch.empty(rows, s, dtype=torch.float32, device=device)
    mn = torch.empty_like(mx)
    best = torch.empty(rows, s, dtype=torch.float32, device=device)
    best_i = torch.empty(rows, s, dtype=torch.int32, device=device)
    if out is None:
        out = torch.empty(rows, dtype=torch.int64, device=device)
    if cut is None:
        cut = torch.empty(rows, dtype=torch.float32, device=device)
    grid = (rows, s)
    temp = float(temperature)
    stride = logits.stride(0)
    _stats_kernel[grid](logits, mx, mn, n, stride, temp, s, CHUNK=chunk, BLOCK=1024)
    if nucleus:
        # every token below max + log((1 - top_p) / V) - 1 lies outside the nucleus: together they
        # hold less than 1 - top_p of the mass (the most likely token alone has exp(0) = 1)
        log_floor = math.log((1.0 - top_p) / n) - 1.0
        count = torch.empty(rows, s, dtype=torch.int32, device=device)
        zp = torch.empty(rows, s, dtype=torch.float32, device=device)
        cand = torch.empty(rows, n, dtype=torch.float32, device=device)
        consts = dict(CHUNK=chunk, BLOCK=1024, S_PAD=s_pad)
        _count_kernel[grid](logits, mx, count, zp, n, stride, temp, log_floor, s, **consts)
        _compact_kernel[grid](logits, mx, count, cand, n, stride, temp, log_floor, s, **consts)
        _cut_kernel[(rows,)](
            cand,
            mx,
            count,
            zp,
            cut,
            n,
            float(top_p),
            s,
            BLOCK=256,
            S_PAD=s_pad,
            INTERPRET=_INTERPRET,
            num_warps=4,
        )
    else:
        cut.fill_(float("-inf"))
    _race_kernel[grid](
        logits,
        cut,
        best,
        best_i,
        seed,
        seed if slot is None else slot,
        n,
        stride,
        temp,
        s,
        NUCLEUS=nucleus,
        HAS_SLOT=slot is not None,
        CHUNK=chunk,
        BLOCK=1024,
    )
    _pick_kernel[(rows,)](best, best_i, out, s, S_PAD=s_pad)
    return out


def top_p_cut(logits: torch.Tensor, top_p: float, temperature: float = 1.0) -> torch.Tensor:
    """[R] float32: the cut :func:`sample_rows` keeps ``logits / temperature >= cut`` above (its check)."""
    cut = torch.empty(logits.shape[0], dtype=torch.float32, device=logits.device)
    seed = torch.zeros(1, dtype=torch.int64, device=logits.device)
    sample_rows(logits, temperature=temperature, top_p=top_p, seed=seed, cut=cut)
    return cut
