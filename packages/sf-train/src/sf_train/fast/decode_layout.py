"""The decoder's per-call state: static device buffers (:class:`Layout`), timings (:class:`DecodeStats`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from sf_train.fast.merged import MergedLayer

__all__ = ["DecodeStats", "Layout"]


@dataclass(slots=True)
class DecodeStats:
    """Timings of the last :meth:`SharedPrefixDecoder.generate` call (seconds, device-synchronised)."""

    prefill_s: float = 0.0
    decode_s: float = 0.0
    capture_s: float = 0.0
    steps: int = 0
    graphs: int = 0
    new_tokens: int = 0
    rows: int = 0
    attention: str = ""
    merged: bool = False
    merge_s: float = 0.0
    top_p_kernel: bool = False
    sampler: str = ""
    residual_norm: bool = False
    chunks: list[float] = field(default_factory=list)


class Layout:
    """Static buffers of one generate call: G prompts × k samples, prefix P, generated T."""

    def __init__(self, dec: Any, groups: int, k: int, prefix_len: int, gen_len: int) -> None:
        device, dtype = dec.device, dec.dtype
        n_layers, hkv, dim = len(dec.layers), dec.kv_heads, dec.head_dim
        self.groups, self.k, self.rows = groups, k, groups * k
        self.prefix_len, self.gen_len = prefix_len, gen_len
        self.kp = torch.zeros(n_layers, groups, hkv, prefix_len, dim, dtype=dtype, device=device)
        self.vp = torch.zeros_like(self.kp)
        self.kg = torch.zeros(n_layers, self.rows, hkv, gen_len, dim, dtype=dtype, device=device)
        self.vg = torch.zeros_like(self.kg)
        self.prefix_start = torch.zeros(groups, dtype=torch.int32, device=device)
        self.prefix_valid = torch.zeros(groups, prefix_len, dtype=torch.bool, device=device)
        self.tok = torch.zeros(self.rows, dtype=torch.long, device=device)
        self.pos = torch.zeros(self.rows, dtype=torch.long, device=device)
        self.slot = torch.zeros(1, dtype=torch.long, device=device)
        self.done = torch.zeros(self.rows, dtype=torch.bool, device=device)
        self.out = torch.zeros(self.rows, gen_len + 1, dtype=torch.long, device=device)
        self.arange = torch.arange(gen_len, device=device)
        self.attn_out = torch.empty(self.rows, dec.heads, dim, dtype=dtype, device=device)
        self.scratch = None
        if dec.attention == "triton":
            from sf_train.fast.attention_kernels import DecodeAttentionScratch

            # default: one generated split, every split and the merge in one launch (measured on the H200)
            options = {"split_gen": gen_len, "one_launch": True, **dec.attention_options}
            self.scratch = DecodeAttentionScratch(
                batch=self.rows,
                heads=dec.heads,
                head_dim=dim,
                prefix_len=prefix_len,
                gen_len=gen_len,
                device=device,
                **options,
            )
        self.seed = torch.zeros(1, dtype=torch.long, device=device)
        self.graphs: dict[int, torch.cuda.CUDAGraph] = {}
        self.pool: Any = None
        self.merged: list[MergedLayer] | None = None
