"""Attention for shared-prefix packed pairs, as a transformers attention function.

Two layouts (:mod:`sf_train.fast.packing`):

* **Rows** (``sf_segments``): one padded row per pair; each row is attended with two causal sdpa
  calls (chosen part; prefix ++ rejected suffix). Runs on any device.
* **Varlen** (``sf_varlen``): every pair back to back in one padding-free row; one
  variable-length flash-attention call per layer for the whole micro-batch (CUDA, with
  ``torch.nn.attention.varlen``), keys/values gathered once per layer. No per-pair slicing, no
  padding, no ``[N, N]`` mask; GQA without repeated K/V. :func:`varlen_kernel_works` checks the
  kernel against :func:`reference_varlen_attention` on the device before it is used.

Without either keyword the function is transformers' own sdpa attention (e.g. a recompute under
gradient checkpointing with a 4D mask).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import torch

from sf_train.fast.packing import VarlenLayout

__all__ = [
    "reference_varlen_attention",
    "shared_prefix_attention",
    "split_attention",
    "varlen_attention",
    "varlen_kernel_works",
]

IMPL_NAME = "sf_shared_prefix"

VarlenKernel = Callable[..., torch.Tensor]
"""``(q [Tq,H,D], k [Tk,Hk,D], v, cu_q, cu_k, max_q, max_k, scale) -> [Tq,H,D]``, causal, bottom-right."""


def reference_varlen_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    cu_q: torch.Tensor,
    cu_k: torch.Tensor,
    max_q: int,
    max_k: int,
    scale: float | None,
) -> torch.Tensor:
    """Varlen causal attention, bottom-right aligned, one sdpa call per segment (any device)."""
    del max_q, max_k
    outs = []
    bounds_q, bounds_k = cu_q.tolist(), cu_k.tolist()
    gqa = q.shape[1] != k.shape[1]
    for i in range(len(bounds_q) - 1):
        q0, q1, k0, k1 = bounds_q[i], bounds_q[i + 1], bounds_k[i], bounds_k[i + 1]
        lq, lk = q1 - q0, k1 - k0
        mask = torch.ones(lq, lk, dtype=torch.bool, device=q.device).tril(diagonal=lk - lq)
        out = torch.nn.functional.scaled_dot_product_attention(
            q[q0:q1].transpose(0, 1)[None],
            k[k0:k1].transpose(0, 1)[None],
            v[k0:k1].transpose(0, 1)[None],
            attn_mask=mask,
            scale=scale,
            enable_gqa=gqa,
        )
        outs.append(out[0].transpose(0, 1))
    return torch.cat(outs, 0)


def flash_varlen_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    cu_q: torch.Tensor,
    cu_k: torch.Tensor,
    max_q: int,
    max_k: int,
    scale: float | None,
) -> torch.Tensor:
    """``torch.nn.attention.varlen.varlen_attn``, causal, across its signature versions.

    Flash attention has no float32 kernel: float32 inputs (a precision check) go to
    :func:`reference_varlen_attention`.
    """
    if q.dtype not in (torch.float16, torch.bfloat16):
        return reference_varlen_attention(q, k, v, cu_q, cu_k, max_q, max_k, scale)
    varlen_attn, causal, has_gqa = _varlen_api()
    kwargs: dict[str, Any] = {"scale": scale, **causal}
    if has_gqa:
        kwargs["enable_gqa"] = q.shape[1] != k.shape[1]
    return varlen_attn(q, k, v, cu_q, cu_k, max_q, max_k, **kwargs)


@functools.cache
def _varlen_api() -> tuple[Callable[..., Any], dict[str, Any], bool]:
    """``varlen_attn``, its causal keyword(s) and whether it takes ``enable_gqa``.

    Read once: the signature changed across torch versions, and this is called for every layer.
    """
    from torch.nn.attention.varlen import varlen_attn

    params = inspect.signature(varlen_attn).parameters
    causal: dict[str, Any] = {"window_size": (-1, 0)} if "window_size" in params else {"is_causal": True}
    attend: Callable[..., Any] = varlen_attn  # a Tensor without return_aux (never passed here)
    return attend, causal, "enable_gqa" in params


def varlen_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    layout: VarlenLayout,
    scale: float | None,
    kernel: VarlenKernel,
) -> torch.Tensor:
    """Attention of the varlen row: ``[1, H, T, D]`` query (transformers' layout) → ``[1, T, H, D]``."""
    q = query[0].transpose(0, 1)
    k = key[0].transpose(0, 1).index_select(0, layout.kv_index)
    v = value[0].transpose(0, 1).index_select(0, layout.kv_index)
    if q.stride(-1) != 1:
        q = q.contiguous()
    out = kernel(q, k, v, layout.cu_seq_q, layout.cu_seq_k, layout.max_q, layout.max_k, scale)
    return out[None]


def shared_prefix_attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    sf_segments: tuple[tuple[int, int, int], ...] | None = None,
    sf_varlen: tuple[VarlenLayout, VarlenKernel] | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """Transformers attention function for packed pairs (see the module docstring).

    Row layout: row ``b`` with segments ``(lc, s, n)`` holds ``prompt+chosen`` in ``[0, lc)`` and
    the rejected suffix in ``[lc, n)``. The chosen part is plain causal attention; the rejected
    part is causal attention over ``prefix[0, s) ++ suffix`` (the prefix queries are recomputed
    and dropped). GQA goes to sdpa as ``enable_gqa``.

    Returns:
        ``([B, N, H, D] output, None)`` as transformers' attention functions do.
    """
    if sf_varlen is not None:
        layout, kernel = sf_varlen
        return varlen_attention(query, key, value, layout, scaling, kernel), None
    if sf_segments is None:
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
        )
    sdpa = torch.nn.functional.scaled_dot_product_attention
    gqa = query.shape[1] != key.shape[1]
    width = query.shape[2]
    rows = []
    for b, (lc, s, n) in enumerate(sf_segments):
        q, k, v = query[b : b + 1], key[b : b + 1], value[b : b + 1]
        parts = [
            sdpa(q[:, :, :lc], k[:, :, :lc], v[:, :, :lc], is_causal=True, scale=scaling, enable_gqa=gqa)
        ]
        if n > lc:
            qq = torch.cat([q[:, :, :s], q[:, :, lc:n]], 2)
            kk = torch.cat([k[:, :, :s], k[:, :, lc:n]], 2)
            vv = torch.cat([v[:, :, :s], v[:, :, lc:n]], 2)
            parts.append(sdpa(qq, kk, vv, is_causal=True, scale=scaling, enable_gqa=gqa)[:, :, s:])
        if width > n:
            parts.append(q.new_zeros(1, q.shape[1], width - n, q.shape[3]))
        rows.append(torch.cat(parts, 2))
    return torch.cat(rows, 0).transpose(1, 2).contiguous(), None


@contextlib.contextmanager
def split_attention(lm: Any, enabled: bool) -> Iterator[None]:
    """Route the model's attention through :func:`shared_prefix_attention` while active."""
    if not enabled:
        yield
        return
    from transformers import AttentionInterface

    if IMPL_NAME not in AttentionInterface._global_mapping:
        AttentionInterface.register(IMPL_NAME, shared_prefix_attention)
    configs = {id(c): c for c in (lm.config, lm.config.get_text_config())}.values()
    previous = [(c, c._attn_implementation) for c in configs]
    try:
        for c, _ in previous:
            c._attn_implementation = IMPL_NAME
        yield
    finally:
        for c, impl in previous:
            c._attn_implementation = impl


_VARLEN_OK: dict[str, bool] = {}


def _varlen_self_test(device: torch.device) -> None:
    """Raise unless the flash varlen kernel matches the reference (values and gradients, bf16)."""
    gen = torch.Generator(device=device).manual_seed(0)
    cu_q = torch.tensor([0, 40, 64, 100, 107], dtype=torch.int32, device=device)
    cu_k = torch.tensor([0, 40, 74, 110, 139], dtype=torch.int32, device=device)  # 2nd, 4th: prefix + suffix
    q = torch.randn(107, 8, 64, device=device, generator=gen, dtype=torch.bfloat16)
    k = torch.randn(139, 2, 64, device=device, generator=gen, dtype=torch.bfloat16)
    v = torch.randn(139, 2, 64, device=device, generator=gen, dtype=torch.bfloat16)
    g = torch.randn(107, 8, 64, device=device, generator=gen, dtype=torch.bfloat16)
    results = []
    for fn, dtype in ((flash_varlen_attention, torch.bfloat16), (reference_varlen_attention, torch.float32)):
        qa, ka, va = (t.detach().to(dtype).requires_grad_() for t in (q, k, v))
        out = fn(qa, ka, va, cu_q, cu_k, 40, 40, 0.125)
        (out.float() * g.float()).sum().backward()
        grads = (qa.grad, ka.grad, va.grad)
        assert all(x is not None for x in grads)
        results.append([out.float()] + [x.float() for x in grads if x is not None])
    for got, want in zip(*results, strict=True):
        err = (got - want).norm() / want.norm()
        if not bool(err < 2e-2):
            raise AssertionError(
                f"flash varlen attention differs from the reference: relative error {err:.3g}"
            )


def varlen_kernel_works(device: torch.device) -> bool:
    """True on CUDA when ``torch.nn.attention.varlen`` runs here and matches the reference."""
    if device.type != "cuda":
        return False
    key = str(device)
    if key not in _VARLEN_OK:
        try:
            with torch.enable_grad():
                _varlen_self_test(device)
            _VARLEN_OK[key] = True
        except Exception as exc:  # older torch, no flash kernel for this GPU: keep the row layout
            warnings.warn(
                f"sf-train: varlen flash attention disabled ({type(exc).__name__}: {exc})", stacklevel=2
            )
            _VARLEN_OK[key] = False
    return _VARLEN_OK[key]
