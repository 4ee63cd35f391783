"""One decode step of :class:`~sf_train.fast.decode.SharedPrefixDecoder` (captured as a CUDA graph on GPU).

:class:`DecodeStep` is the decoder's step math, kept apart from its set-up, prefill, capture and
generation loop: the projections (merged or through the layers' modules), the norms (Triton or the
model's), RoPE with the cache write, attention over the shared prefix and the row's own cache, the
MLP, and the sampling of the next token. ``_step_fused`` is the Triton path, ``_step_torch`` plain
torch (any device). The attributes it reads are set by the decoder's constructor.
"""

from __future__ import annotations

from typing import Any

import torch

from sf_train.fast import sampling
from sf_train.fast.decode_attention import attend_torch, attend_triton
from sf_train.fast.decode_layout import Layout
from sf_train.fast.merged import residual_linear

__all__ = ["DecodeStep"]


class DecodeStep:
    """The step math of the shared-prefix decoder (a mixin: the decoder sets the attributes)."""

    cfg: Any
    embed: Any
    norm: Any
    rotary: Any
    head: Any
    layers: list[Any]
    heads: int
    kv_heads: int
    head_dim: int
    rep: int
    scale: float
    qk_norm: bool
    device: torch.device
    pad_token_id: int
    eos_token_id: int | None
    attention: str
    top_p_kernel: bool | str
    _res_norm: bool
    _sampling: tuple[float, float]

    def _sample(self, logits: torch.Tensor, slot: torch.Tensor | None = None) -> torch.Tensor:
        """Next tokens of [R, V] logits with the call's settings (``self._sampling``).

        ``slot``: the device step counter seeding the split sampler inside a graph (None at prefill).
        """
        temperature, top_p = self._sampling
        method = sampling.resolve_method(self.top_p_kernel, self.device, temperature, top_p)
        seed = getattr(self, "_seed", None)
        return sampling.sample(logits, method, temperature, top_p, seed=seed, slot=slot)

    def _norm(self, module: Any, x: torch.Tensor) -> torch.Tensor:
        if self._fused_norm(module):
            from sf_train.fast.norm_kernels import rms_norm

            return rms_norm(x, module.weight, float(module.variance_epsilon))
        return module(x)

    @staticmethod
    def _fused_norm(module: Any) -> bool:
        """Transformers' Llama-style RMSNorm (``weight * normed``, not Gemma's ``1 + weight``)."""
        return (
            type(module).__name__ in ("LlamaRMSNorm", "MistralRMSNorm", "Qwen2RMSNorm", "Qwen3RMSNorm")
            and hasattr(module, "variance_epsilon")
            and getattr(module, "weight", None) is not None
        )

    def _add_norm(
        self, module: Any, x: torch.Tensor, delta: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x + delta, module(x + delta))``: one kernel with ``residual_norm``, else add, then norm."""
        if self._res_norm and self._fused_norm(module):
            from sf_train.fast.norm_kernels import add_rms_norm

            return add_rms_norm(x, delta, module.weight, float(module.variance_epsilon))
        x = x + delta
        return x, self._norm(module, x)

    def _qkv(
        self, lay: Layout, i: int, attn: Any, h: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if lay.merged is None:
            return attn.q_proj(h), attn.k_proj(h), attn.v_proj(h)
        m = lay.merged[i]
        q, k, v = torch.nn.functional.linear(h, m.qkv, m.qkv_bias).split(m.split, dim=-1)
        return q, k, v

    def _o(self, lay: Layout, i: int, attn: Any, o: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``x + o_proj(o)`` (merged: the residual accumulated in the GEMM)."""
        if lay.merged is None:
            return x + attn.o_proj(o)
        m = lay.merged[i]
        return residual_linear(x, o, m.o, m.o_bias)

    def _mlp(self, lay: Layout, i: int, mlp: Any, h: torch.Tensor, x: torch.Tensor | None) -> torch.Tensor:
        """``x + mlp(h)``, or ``mlp(h)`` alone when ``x`` is None.

        Merged: fused gate/up, the residual accumulated in the down GEMM.
        """
        if lay.merged is None:
            return mlp(h) if x is None else x + mlp(h)
        m = lay.merged[i]
        gu = torch.nn.functional.linear(h, m.gate_up)
        if self.attention == "triton" and getattr(self.cfg, "hidden_act", None) in ("silu", "swish"):
            from sf_train.fast.swiglu_kernels import swiglu_split

            act = swiglu_split(gu.reshape(-1, gu.shape[-1])).view(*gu.shape[:-1], gu.shape[-1] // 2)
        else:
            n = gu.shape[-1] // 2
            act = mlp.act_fn(gu[..., :n]) * gu[..., n:]
        if x is None:
            return torch.nn.functional.linear(act, m.down)
        return residual_linear(x, act, m.down, None)

    def _step_fused(self, lay: Layout) -> torch.Tensor:
        """One decode step with the Triton kernels (norms, RoPE + cache write, attention).

        Returns the last hidden state [B, hidden].
        """
        from sf_train.fast.rope_kernels import rope_and_store

        rows, heads, kv_heads, dim = lay.rows, self.heads, self.kv_heads, self.head_dim
        x = self.embed(lay.tok)
        cos, sin = self.rotary(x[:, None], lay.pos[:, None])
        cos, sin = cos.reshape(rows, dim), sin.reshape(rows, dim)
        res = self._res_norm and lay.merged is not None
        h: torch.Tensor | None = None
        for i, layer in enumerate(self.layers):
            attn = layer.self_attn
            if h is None:
                h = self._norm(layer.input_layernorm, x)
            q, k, v = self._qkv(lay, i, attn, h)
            if self.qk_norm:
                q = attn.q_norm(q.reshape(rows, heads, dim)).reshape(rows, heads * dim)
                k = attn.k_norm(k.reshape(rows, kv_heads, dim)).reshape(rows, kv_heads * dim)
            q = rope_and_store(
                _rows_contiguous(q),
                _rows_contiguous(k),
                _rows_contiguous(v),
                cos,
                sin,
                lay.kg[i],
                lay.vg[i],
                lay.slot,
                heads=heads,
                kv_heads=kv_heads,
                head_dim=dim,
            )
            o = attend_triton(lay, i, q, scale=self.scale).reshape(rows, heads * dim)
            if res:  # the residual adds run inside the next norm's kernel
                assert lay.merged is not None
                m = lay.merged[i]
                after = self.layers[i + 1].input_layernorm if i + 1 < len(self.layers) else self.norm
                delta = torch.nn.functional.linear(o, m.o, m.o_bias)
                x, h = self._add_norm(layer.post_attention_layernorm, x, delta)
                x, h = self._add_norm(after, x, self._mlp(lay, i, layer.mlp, h, None))
            else:
                x = self._o(lay, i, attn, o, x)
                x = self._mlp(lay, i, layer.mlp, self._norm(layer.post_attention_layernorm, x), x)
                h = None
        return h if res and h is not None else self._norm(self.norm, x)

    def _step(self, lay: Layout, width: int) -> None:
        if self.attention == "triton":
            hidden = self._step_fused(lay)
        else:
            hidden = self._step_torch(lay, width)
        nxt = self._sample(self.head(hidden), lay.slot)
        nxt = torch.where(lay.done, torch.full_like(nxt, self.pad_token_id), nxt)
        if self.eos_token_id is not None:
            lay.done |= nxt == self.eos_token_id
        lay.out.index_copy_(1, lay.slot + 1, nxt[:, None])
        lay.tok.copy_(nxt)
        lay.pos.add_(1)
        lay.slot.add_(1)

    def _step_torch(self, lay: Layout, width: int) -> torch.Tensor:
        """One decode step in plain torch (any device); returns the last hidden state [B, hidden]."""
        rows = lay.rows
        x = self.embed(lay.tok)[:, None, :]
        cos, sin = self.rotary(x, lay.pos[:, None])
        cos, sin = cos[:, None], sin[:, None]  # [B, 1, 1, D]
        for i, layer in enumerate(self.layers):
            attn = layer.self_attn
            h = layer.input_layernorm(x)
            q, k, v = self._qkv(lay, i, attn, h)
            q = q.reshape(rows, 1, self.heads, self.head_dim)
            k = k.reshape(rows, 1, self.kv_heads, self.head_dim)
            v = v.reshape(rows, 1, self.kv_heads, self.head_dim)
            if self.qk_norm:
                q, k = attn.q_norm(q), attn.k_norm(k)
            q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)  # [B, heads, 1, D]
            q = q * cos + _rotate_half(q) * sin
            k = k * cos + _rotate_half(k) * sin
            lay.kg[i].index_copy_(2, lay.slot, k)
            lay.vg[i].index_copy_(2, lay.slot, v)
            q = q[:, :, 0]
            o = attend_torch(lay, i, q, width, scale=self.scale, rep=self.rep)
            x = self._o(lay, i, attn, o.reshape(rows, 1, self.heads * self.head_dim), x)
            x = self._mlp(lay, i, layer.mlp, layer.post_attention_layernorm(x), x)
        return self.norm(x)[:, 0]


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def _rows_contiguous(t: torch.Tensor) -> torch.Tensor:
    """``t`` itself when its rows are contiguous (a column slice of a fused projection), else a copy."""
    return t if t.dim() == 2 and t.stride(-1) == 1 else t.contiguous()
