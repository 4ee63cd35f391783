"""`SharedPrefixDecoder`: sampling k completions per prompt fast with plain transformers weights.

Why `generate` is slow here (measured on the H100, transformers 5.17, batch 64, prompt 512):
every decode step launches thousands of small kernels from Python (launch-bound), the sdpa path
repeats K/V from 8 to 32 heads and copies the growing cache every step, and the k samples of a
prompt each carry their own copy of the prompt's K/V. This decoder:

* runs the prompt **once** per prompt (prefill through the model's own forward) and keeps one
  prefix K/V cache per prompt, read by all k samples (``G`` prompts → ``B = G·k`` rows);
* keeps the generated K/V in static per-row buffers written in place (no copies);
* computes attention GQA-aware (queries grouped per KV head, K/V never repeated), in fp32
  softmax, either with a Triton flash-decoding kernel (:mod:`sf_train.fast.kernels`; reads only
  the filled part of the cache) or with torch matmuls over fixed-size buckets of the cache;
* decodes with **merged, fused projection weights** when memory allows (``merge_weights``): per
  layer one ``[q | k | v]`` and one ``[gate | up]`` matrix with the LoRA adapter folded in
  (``W + scaling · B A``, computed in float32), built at the start of each call from the live
  weights, so a decode step runs 4 GEMMs per layer instead of 7 base GEMMs plus 4 LoRA kernels per
  projection (the LoRA products are launch-bound at decode batch sizes);
* captures one decode step (all layers, the LM head and top-p sampling) as a **CUDA graph** and
  replays it (one graph with Triton, one per bucket of 128 positions with torch);
* samples like transformers (temperature, then top-p keeping the smallest set of most likely
  tokens whose mass reaches ``top_p``, cut on CUDA by a Triton bisection instead of a sort of the
  vocabulary, :func:`sf_train.fast.kernels.top_p_threshold`; greedy at temperature 0) and stops a
  row at EOS or, checked on the host every ``check_every`` steps, at the stop string (the row keeps
  exactly the tokens up to the one that completes it, as transformers' ``stop_strings`` does).

Without merged weights the layers' own modules (norms, projections, MLP, rotary embedding) are
called, so a PEFT LoRA adapter injected into them is applied as it is; either way the model's
weights are never modified, and each call sees the current adapter. Supported: Llama, Mistral (no
sliding window in reach), Qwen2, Qwen3 decoder stacks; :func:`unsupported_reason` says why another
model is not (callers fall back to ``generate``). On CPU the same step runs eagerly (what the tests
check against ``generate``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from sf_train.fast._model import causal_lm

__all__ = ["DecodeStats", "SharedPrefixDecoder", "unsupported_reason"]

_SUPPORTED = ("llama", "mistral", "qwen2", "qwen3")
_SCALED_HEAD_FIELDS = (
    "final_logit_softcapping",
    "logit_scale",
    "output_multiplier",
    "lm_head_multiplier",
    "logits_scaling",
    "attn_logit_softcapping",
)


def unsupported_reason(model: Any) -> str | None:
    """None when :class:`SharedPrefixDecoder` can run ``model``, else a one-line reason."""
    lm = causal_lm(model)
    cfg = getattr(lm, "config", None)
    if cfg is None:
        return f"{type(lm).__name__} has no transformers config"
    cfg = cfg.get_text_config()
    if cfg.model_type not in _SUPPORTED:
        return f"model_type {cfg.model_type!r} is not one of {', '.join(_SUPPORTED)}"
    for name in _SCALED_HEAD_FIELDS:
        if getattr(cfg, name, None) not in (None, 1.0):
            return f"{name}={getattr(cfg, name)!r} is not supported"
    backbone = getattr(lm, "base_model", None)
    layers = getattr(backbone, "layers", None)
    if not layers or not all(hasattr(backbone, a) for a in ("embed_tokens", "norm", "rotary_emb")):
        return f"{type(lm).__name__} does not have a Llama-style decoder stack"
    attn = getattr(layers[0], "self_attn", None)
    if attn is None or not all(hasattr(attn, a) for a in ("q_proj", "k_proj", "v_proj", "o_proj")):
        return "the attention block lacks q/k/v/o projections"
    if not all(hasattr(layers[0], a) for a in ("input_layernorm", "post_attention_layernorm", "mlp")):
        return "the decoder layer is not pre-norm attention + MLP"
    return None


def _sliding_window(cfg: Any) -> int | None:
    window = getattr(cfg, "sliding_window", None)
    if window is None:
        return None
    if cfg.model_type in ("qwen2", "qwen3") and not getattr(cfg, "use_sliding_window", False):
        return None
    return int(window)


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
    chunks: list[float] = field(default_factory=list)


@dataclass(slots=True)
class _MergedLayer:
    """One decoder layer's projections as fused matrices with any LoRA adapter folded in."""

    qkv: torch.Tensor
    qkv_bias: torch.Tensor | None
    o: torch.Tensor
    o_bias: torch.Tensor | None
    gate_up: torch.Tensor
    down: torch.Tensor
    split: tuple[int, int, int]


def _effective_linear(layer: Any, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor | None] | None:
    """(weight, bias) that ``layer`` applies: a plain ``nn.Linear``'s own, or a PEFT LoRA ``Linear``'s
    base weight plus ``scaling · B A`` of its one active plain adapter; None when it is anything else
    (several adapters, DoRA, dropout, a quantised base, a merged-then-disabled adapter)."""
    if type(layer) is torch.nn.Linear:
        return layer.weight, layer.bias
    try:
        from peft.tuners.lora import Linear as LoraLinear
    except ImportError:  # pragma: no cover - peft is a dependency
        return None
    if not isinstance(layer, LoraLinear) or getattr(layer, "fan_in_fan_out", False):
        return None
    base = layer.get_base_layer()
    if type(base) is not torch.nn.Linear:
        return None
    if layer.disable_adapters:
        return None if layer.merged else (base.weight, base.bias)
    if layer.merged:
        return None
    active = [name for name in layer.active_adapters if name in layer.lora_A]
    if not active:
        return base.weight, base.bias
    if len(active) != 1:
        return None
    name = active[0]
    if not isinstance(layer.lora_dropout[name], torch.nn.Identity):
        return None
    if getattr(layer, "use_dora", {}).get(name, False) or getattr(layer, "lora_bias", {}).get(name, False):
        return None
    a, b = layer.lora_A[name], layer.lora_B[name]
    if any(type(m) is not torch.nn.Linear or m.bias is not None for m in (a, b)):
        return None
    delta = (b.weight.float() @ a.weight.float()).mul_(float(layer.scaling[name]))
    return (base.weight.float() + delta).to(dtype), base.bias


def _merge_layer(layer: Any, dtype: torch.dtype) -> _MergedLayer | None:
    attn, mlp = layer.self_attn, layer.mlp
    if not all(hasattr(mlp, a) for a in ("gate_proj", "up_proj", "down_proj", "act_fn")):
        return None
    parts = [_effective_linear(m, dtype) for m in (attn.q_proj, attn.k_proj, attn.v_proj, attn.o_proj)]
    mlp_parts = [_effective_linear(m, dtype) for m in (mlp.gate_proj, mlp.up_proj, mlp.down_proj)]
    if any(p is None for p in parts + mlp_parts):
        return None
    (wq, bq), (wk, bk), (wv, bv), (wo, bo) = parts  # type: ignore[misc]
    (wg, bg), (wu, bu), (wd, bd) = mlp_parts  # type: ignore[misc]
    if bg is not None or bu is not None or bd is not None:
        return None
    qkv_bias = None
    if any(b is not None for b in (bq, bk, bv)):
        pairs = ((wq, bq), (wk, bk), (wv, bv))
        qkv_bias = torch.cat([w.new_zeros(w.shape[0]) if b is None else b.to(dtype) for w, b in pairs])
    return _MergedLayer(
        qkv=torch.cat([wq.to(dtype), wk.to(dtype), wv.to(dtype)]),
        qkv_bias=qkv_bias,
        o=wo.to(dtype),
        o_bias=None if bo is None else bo.to(dtype),
        gate_up=torch.cat([wg.to(dtype), wu.to(dtype)]),
        down=wd.to(dtype),
        split=(wq.shape[0], wk.shape[0], wv.shape[0]),
    )


def _merged_bytes(layers: Sequence[Any]) -> int:
    total = 0
    for layer in layers:
        attn, mlp = layer.self_attn, layer.mlp
        projections = (attn.q_proj, attn.k_proj, attn.v_proj, attn.o_proj)
        for m in (*projections, mlp.gate_proj, mlp.up_proj, mlp.down_proj):
            weight = getattr(getattr(m, "get_base_layer", lambda m=m: m)(), "weight", None)
            if weight is not None:
                total += weight.numel() * weight.element_size()
    return total


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class _Layout:
    """Static buffers of one generate call: G prompts × k samples, prefix P, generated T."""

    def __init__(self, dec: SharedPrefixDecoder, groups: int, k: int, prefix_len: int, gen_len: int) -> None:
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
            from sf_train.fast.kernels import DecodeAttentionScratch

            self.scratch = DecodeAttentionScratch(
                batch=self.rows,
                heads=dec.heads,
                head_dim=dim,
                prefix_len=prefix_len,
                gen_len=gen_len,
                device=device,
            )
        self.graphs: dict[int, torch.cuda.CUDAGraph] = {}
        self.pool: Any = None
        self.merged: list[_MergedLayer] | None = None


class SharedPrefixDecoder:
    """k-sample decoding with a shared prefix cache, GQA-aware attention and CUDA graphs.

    Args:
        model: A transformers causal LM, or a PEFT model wrapping one (its adapter is applied).
        pad_token_id: Id written after a row has finished.
        eos_token_id: Stops a row (None: never).
        attention: ``"triton"``, ``"torch"`` or ``"auto"`` (Triton on CUDA when it imports).
        cuda_graphs: Capture decode steps as CUDA graphs (CUDA only).
        bucket: Cache positions per graph for the torch attention (it reads whole buckets).
        check_every: Steps between host checks for EOS-everywhere and the stop string.
        merge_weights: Decode with fused ``[q|k|v]`` / ``[gate|up]`` matrices with the adapter folded
            in (a copy of the projection weights for the call: about 14 GiB for an 8B model).
            ``"auto"``: on CUDA when free memory exceeds that copy by 4 GiB; True forces it where
            the layers allow (else the modules are called); False: never.
        top_p_kernel: Cut the nucleus with :func:`sf_train.fast.kernels.top_p_threshold` (bisection on
            the logits, no sort over the vocabulary; ties at the cut are all kept) instead of a full
            sort. ``"auto"``: on CUDA with Triton once it agrees with the sort on this device; True
            also elsewhere (Triton's interpreter on CPU); False: always sort.

    Raises:
        ValueError: the model is not supported (see :func:`unsupported_reason`) or an unknown
            attention backend.
    """

    def __init__(
        self,
        model: Any,
        *,
        pad_token_id: int,
        eos_token_id: int | None = None,
        attention: str = "auto",
        cuda_graphs: bool = True,
        bucket: int = 128,
        check_every: int = 32,
        merge_weights: bool | str = "auto",
        top_p_kernel: bool | str = "auto",
    ) -> None:
        reason = unsupported_reason(model)
        if reason is not None:
            raise ValueError(f"SharedPrefixDecoder cannot run this model: {reason}")
        self.model = model
        self.lm = causal_lm(model)
        self.cfg = self.lm.config.get_text_config()
        backbone = self.lm.base_model
        self.embed, self.norm, self.rotary = backbone.embed_tokens, backbone.norm, backbone.rotary_emb
        self.layers = list(backbone.layers)
        self.head = self.lm.get_output_embeddings()
        self.heads = self.cfg.num_attention_heads
        self.kv_heads = getattr(self.cfg, "num_key_value_heads", None) or self.heads
        self.head_dim = getattr(self.cfg, "head_dim", None) or self.cfg.hidden_size // self.heads
        self.rep = self.heads // self.kv_heads
        self.scale = float(getattr(self.layers[0].self_attn, "scaling", self.head_dim**-0.5))
        self.qk_norm = hasattr(self.layers[0].self_attn, "q_norm")
        param = next(self.lm.parameters())
        self.device, self.dtype = param.device, self.embed.weight.dtype
        self.pad_token_id, self.eos_token_id = pad_token_id, eos_token_id
        triton_shape_ok = _pow2_at_least_16(self.head_dim)  # the kernels tile whole heads
        if attention == "auto":
            use_triton = self.device.type == "cuda" and _triton_ok() and triton_shape_ok
            attention = "triton" if use_triton else "torch"
        if attention not in ("triton", "torch"):
            raise ValueError(f"attention must be 'auto', 'triton' or 'torch' (got {attention!r})")
        if attention == "triton" and not triton_shape_ok:
            raise ValueError(
                f"attention='triton' needs a head dimension that is a power of two >= 16 "
                f"(this model's is {self.head_dim}); use 'torch' or 'auto'"
            )
        self.attention = attention
        self.cuda_graphs = cuda_graphs and self.device.type == "cuda"
        self.bucket = bucket
        self.check_every = max(1, check_every)
        if merge_weights not in (True, False, "auto"):
            raise ValueError(f"merge_weights must be True, False or 'auto' (got {merge_weights!r})")
        self.merge_weights = merge_weights
        self.top_p_kernel = top_p_kernel
        self.stats = DecodeStats()
        self._sampling: tuple[float, float] = (1.0, 1.0)

    # ---- one decode step (captured as a CUDA graph on GPU) ------------------------------------

    def _attend_torch(self, lay: _Layout, layer: int, q: torch.Tensor, width: int) -> torch.Tensor:
        g, k, hkv, rep, dim = lay.groups, lay.k, self.kv_heads, self.rep, self.head_dim
        rows = lay.rows
        neg = float("-inf")
        qg = q.reshape(g, k, hkv, rep, dim).transpose(1, 2).reshape(g, hkv, k * rep, dim)
        sp = torch.matmul(qg, lay.kp[layer].transpose(-1, -2)).float() * self.scale
        sp = sp.masked_fill(~lay.prefix_valid[:, None, None, :], neg)
        mp = sp.amax(-1, keepdim=True)
        ep = torch.exp(sp - mp)
        lp = ep.sum(-1, keepdim=True)
        op = torch.matmul(ep.to(self.dtype), lay.vp[layer])

        def per_row(t: torch.Tensor) -> torch.Tensor:
            return t.reshape(g, hkv, k, rep, t.shape[-1]).transpose(1, 2).reshape(rows, hkv, rep, t.shape[-1])

        op, mp, lp = per_row(op).float(), per_row(mp), per_row(lp)
        qb = q.reshape(rows, hkv, rep, dim)
        sg = torch.matmul(qb, lay.kg[layer][:, :, :width].transpose(-1, -2)).float() * self.scale
        sg = sg.masked_fill(lay.arange[:width] > lay.slot, neg)
        mg = sg.amax(-1, keepdim=True)
        eg = torch.exp(sg - mg)
        lg = eg.sum(-1, keepdim=True)
        og = torch.matmul(eg.to(self.dtype), lay.vg[layer][:, :, :width]).float()
        top = torch.maximum(mp, mg)
        ap, ag = torch.exp(mp - top), torch.exp(mg - top)
        out = (op * ap + og * ag) / (lp * ap + lg * ag)
        return out.to(self.dtype).reshape(rows, self.heads, dim)

    def _attend_triton(self, lay: _Layout, layer: int, q: torch.Tensor) -> torch.Tensor:
        from sf_train.fast.kernels import decode_attention

        assert lay.scratch is not None
        return decode_attention(
            q.contiguous(),
            lay.kp[layer],
            lay.vp[layer],
            lay.prefix_start,
            lay.kg[layer],
            lay.vg[layer],
            lay.slot,
            k=lay.k,
            scale=self.scale,
            scratch=lay.scratch,
            out=lay.attn_out,
        )

    def _sample(self, logits: torch.Tensor) -> torch.Tensor:
        temperature, top_p = self._sampling
        if temperature <= 0:
            return logits.argmax(-1)
        logits = logits / temperature
        if top_p >= 1.0:
            probs = torch.softmax(logits, -1)
            race = probs / torch.empty_like(probs).exponential_()
            return race.argmax(-1)
        if self._use_threshold_top_p():
            from sf_train.fast.kernels import top_p_threshold

            cut = top_p_threshold(logits, top_p)
            probs = torch.softmax(logits, -1).masked_fill_(logits < cut[:, None], 0.0)
            return (probs / torch.empty_like(probs).exponential_()).argmax(-1)
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        probs = torch.softmax(sorted_logits, -1)
        before = probs.cumsum(-1) - probs  # mass strictly more likely than each token
        probs = probs.masked_fill(before >= top_p, 0.0)
        choice = (probs / torch.empty_like(probs).exponential_()).argmax(-1, keepdim=True)
        return order.gather(-1, choice)[:, 0]

    def _use_threshold_top_p(self) -> bool:
        """The Triton nucleus cut (no vocabulary sort): forced by ``top_p_kernel=True``; with ``"auto"``
        on CUDA once it agrees with the sort-based cut on this device (checked once per device)."""
        if self.top_p_kernel is False or not _triton_ok():
            return False
        if self.top_p_kernel is True:
            return True
        return self.device.type == "cuda" and _top_p_kernel_works(self.device)

    def _norm(self, module: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        if self._fused_norm(module):
            from sf_train.fast.kernels import rms_norm

            return rms_norm(x, module.weight, float(module.variance_epsilon))
        return module(x)

    @staticmethod
    def _fused_norm(module: torch.nn.Module) -> bool:
        """transformers' Llama-style RMSNorm (``weight * normed``, not Gemma's ``1 + weight``)."""
        return (
            type(module).__name__ in ("LlamaRMSNorm", "MistralRMSNorm", "Qwen2RMSNorm", "Qwen3RMSNorm")
            and hasattr(module, "variance_epsilon")
            and getattr(module, "weight", None) is not None
        )

    def _want_merged(self) -> bool:
        if self.merge_weights is False:
            return False
        if self.merge_weights == "auto":
            if self.device.type != "cuda":
                return False
            free, _ = torch.cuda.mem_get_info(self.device)
            return free > _merged_bytes(self.layers) + 4 * 1024**3
        return True

    def _merge(self) -> list[_MergedLayer] | None:
        """Fused, adapter-folded projection matrices of every layer (None if a layer cannot be merged)."""
        merged = []
        for layer in self.layers:
            m = _merge_layer(layer, self.dtype)
            if m is None:
                return None
            merged.append(m)
        return merged

    def _qkv(
        self, lay: _Layout, i: int, attn: Any, h: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if lay.merged is None:
            return attn.q_proj(h), attn.k_proj(h), attn.v_proj(h)
        m = lay.merged[i]
        q, k, v = torch.nn.functional.linear(h, m.qkv, m.qkv_bias).split(m.split, dim=-1)
        return q, k, v

    def _o(self, lay: _Layout, i: int, attn: Any, o: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``x + o_proj(o)`` (merged: the residual accumulated in the GEMM)."""
        if lay.merged is None:
            return x + attn.o_proj(o)
        m = lay.merged[i]
        return _residual_linear(x, o, m.o, m.o_bias)

    def _mlp(self, lay: _Layout, i: int, mlp: Any, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``x + mlp(h)`` (merged: fused gate/up, the residual accumulated in the down GEMM)."""
        if lay.merged is None:
            return x + mlp(h)
        m = lay.merged[i]
        x, residual = h, x
        gu = torch.nn.functional.linear(x, m.gate_up)
        if self.attention == "triton" and getattr(self.cfg, "hidden_act", None) in ("silu", "swish"):
            from sf_train.fast.kernels import swiglu_split

            h = swiglu_split(gu.reshape(-1, gu.shape[-1])).view(*gu.shape[:-1], gu.shape[-1] // 2)
        else:
            n = gu.shape[-1] // 2
            h = mlp.act_fn(gu[..., :n]) * gu[..., n:]
        return _residual_linear(residual, h, m.down, None)

    def _step_fused(self, lay: _Layout) -> torch.Tensor:
        """One decode step with the Triton kernels (norms, RoPE + cache write, attention); returns the
        last hidden state [B, hidden]."""
        from sf_train.fast.kernels import rope_and_store

        rows, heads, kv_heads, dim = lay.rows, self.heads, self.kv_heads, self.head_dim
        x = self.embed(lay.tok)
        cos, sin = self.rotary(x[:, None], lay.pos[:, None])
        cos, sin = cos.reshape(rows, dim), sin.reshape(rows, dim)
        for i, layer in enumerate(self.layers):
            attn = layer.self_attn
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
            o = self._attend_triton(lay, i, q)
            x = self._o(lay, i, attn, o.reshape(rows, heads * dim), x)
            x = self._mlp(lay, i, layer.mlp, self._norm(layer.post_attention_layernorm, x), x)
        return self._norm(self.norm, x)

    def _step(self, lay: _Layout, width: int) -> None:
        if self.attention == "triton":
            hidden = self._step_fused(lay)
        else:
            hidden = self._step_torch(lay, width)
        logits = self.head(hidden).float()
        nxt = self._sample(logits)
        nxt = torch.where(lay.done, torch.full_like(nxt, self.pad_token_id), nxt)
        if self.eos_token_id is not None:
            lay.done |= nxt == self.eos_token_id
        lay.out.index_copy_(1, lay.slot + 1, nxt[:, None])
        lay.tok.copy_(nxt)
        lay.pos.add_(1)
        lay.slot.add_(1)

    def _step_torch(self, lay: _Layout, width: int) -> torch.Tensor:
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
            o = self._attend_torch(lay, i, q, width)
            x = self._o(lay, i, attn, o.reshape(rows, 1, self.heads * self.head_dim), x)
            x = self._mlp(lay, i, layer.mlp, layer.post_attention_layernorm(x), x)
        return self.norm(x)[:, 0]

    def _run_step(self, lay: _Layout, step: int) -> None:
        width = (
            lay.gen_len
            if self.attention == "triton"
            else min(lay.gen_len, (step // self.bucket + 1) * self.bucket)
        )
        if not self.cuda_graphs:
            self._step(lay, width)
            return
        graph = lay.graphs.get(width)
        if graph is None:
            graph = self._capture(lay, width)
        graph.replay()

    def _capture(self, lay: _Layout, width: int) -> torch.cuda.CUDAGraph:
        torch.cuda.synchronize(self.device)
        start = time.perf_counter()
        state = [t.clone() for t in (lay.tok, lay.pos, lay.slot, lay.done)]
        column = lay.out.clone()
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):
            self._step(lay, width)  # warm-up: allocator, cuBLAS handles, Triton compilation
        torch.cuda.current_stream(self.device).wait_stream(side)
        for t, saved in zip((lay.tok, lay.pos, lay.slot, lay.done), state, strict=True):
            t.copy_(saved)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=lay.pool):
            self._step(lay, width)
        lay.pool = graph.pool()
        lay.out.copy_(column)
        torch.cuda.synchronize(self.device)
        lay.graphs[width] = graph
        self.stats.capture_s += time.perf_counter() - start
        self.stats.graphs += 1
        return graph

    # ---- prefill and the generation loop ------------------------------------------------------

    def _prefill(self, lay: _Layout, prompts: Sequence[Sequence[int]]) -> None:
        groups, plen = lay.groups, lay.prefix_len
        ids = torch.full((groups, plen), self.pad_token_id, dtype=torch.long)
        mask = torch.zeros(groups, plen, dtype=torch.long)
        for i, p in enumerate(prompts):
            if p:
                ids[i, plen - len(p) :] = torch.tensor(list(p), dtype=torch.long)
                mask[i, plen - len(p) :] = 1
        ids, mask = ids.to(self.device), mask.to(self.device)
        positions = (mask.cumsum(1) - 1).clamp(min=0)
        out = self.lm(
            input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, logits_to_keep=1
        )
        cache = out.past_key_values
        valid = mask.bool()
        lay.prefix_valid.copy_(valid)
        lay.prefix_start.copy_((plen - mask.sum(1)).to(torch.int32))
        for i in range(len(self.layers)):
            if hasattr(cache, "layers"):
                keys, values = cache.layers[i].keys, cache.layers[i].values
            else:  # transformers < 4.56
                keys, values = cache.key_cache[i], cache.value_cache[i]
            lay.kp[i].copy_(keys)
            lay.vp[i].copy_(values)
        # padding positions may hold NaN (fully masked queries): zero them, they are never attended
        lay.kp.masked_fill_(~valid[None, :, None, :, None], 0)
        lay.vp.masked_fill_(~valid[None, :, None, :, None], 0)
        logits = out.logits[:, -1].float().repeat_interleave(lay.k, dim=0)
        first = self._sample(logits)
        lay.done.zero_()
        if self.eos_token_id is not None:
            lay.done |= first == self.eos_token_id
        lay.out.zero_()
        lay.out[:, 0] = first
        lay.tok.copy_(first)
        lay.pos.copy_(mask.sum(1).repeat_interleave(lay.k))
        lay.slot.zero_()

    @torch.inference_mode()
    def generate(
        self,
        prompts: Sequence[Sequence[int]],
        k: int,
        *,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_p: float = 1.0,
        batch_size: int = 64,
        stop: str | None = None,
        decode: Callable[[list[int]], str] | None = None,
        seed: int | None = None,
    ) -> list[list[list[int]]]:
        """Sample ``k`` continuations of each prompt.

        Args:
            prompts: Token ids of each prompt (no padding).
            k: Samples per prompt.
            max_new_tokens: Tokens per sample at most.
            temperature: 0 = greedy. top_p: Nucleus mass (1 = off).
            batch_size: Rows per decode batch; ``max(1, batch_size // k)`` prompts go together.
            stop: Stop string (needs ``decode``); the row ends with the token completing it.
            decode: Token ids → text, for the stop string.
            seed: Seeds torch's RNG first (all devices).

        Returns:
            ``len(prompts)`` lists of ``k`` token lists (EOS and padding removed).

        Raises:
            ValueError: bad arguments, or a sliding window shorter than prompt + completion.
        """
        if k < 1 or max_new_tokens < 1:
            raise ValueError("k and max_new_tokens must be at least 1")
        if stop and decode is None:
            raise ValueError("a stop string needs a decode function")
        if not prompts:
            return []
        if seed is not None:
            torch.manual_seed(seed)
        self._sampling = (float(temperature), float(top_p))
        self.stats = DecodeStats(attention=self.attention)
        groups = max(1, min(len(prompts), batch_size // k))
        prefix_len = -(-max(len(p) for p in prompts) // 16) * 16
        gen_len = -(-max_new_tokens // self.bucket) * self.bucket
        window = _sliding_window(self.cfg)
        if window is not None and window < prefix_len + gen_len:
            raise ValueError(f"sliding window {window} < prompt + completion length {prefix_len + gen_len}")
        if 0 < temperature and top_p < 1.0:
            self.stats.top_p_kernel = self._use_threshold_top_p()
        want_merged = self._want_merged()
        lay = _Layout(self, groups, k, prefix_len, gen_len)
        if want_merged:
            self._sync()
            start = time.perf_counter()
            lay.merged = self._merge()
            self._sync()
            self.stats.merge_s = time.perf_counter() - start
            self.stats.merged = lay.merged is not None
        was_training = self.lm.training
        self.lm.eval()
        results: list[list[list[int]]] = []
        try:
            for at in range(0, len(prompts), groups):
                chunk = list(prompts[at : at + groups])
                real = len(chunk)
                chunk += [chunk[-1]] * (groups - real)  # static shapes: repeat the last prompt
                rows = self._generate_chunk(lay, chunk, max_new_tokens, stop, decode)
                results.extend(rows[i * k : (i + 1) * k] for i in range(real))
                self.stats.rows += real * k
                self.stats.new_tokens += sum(len(r) for r in rows[: real * k])
        finally:
            self.lm.train(was_training)
        return results

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def _generate_chunk(
        self,
        lay: _Layout,
        chunk: list[Sequence[int]],
        max_new: int,
        stop: str | None,
        decode: Callable[[list[int]], str] | None,
    ) -> list[list[int]]:
        self._sync()
        t0 = time.perf_counter()
        self._prefill(lay, chunk)
        self._sync()
        t1 = time.perf_counter()
        capture_before = self.stats.capture_s
        stopped: dict[int, int] = {}  # row -> tokens kept (stop string)
        checked = 0
        produced = 1
        overlap = len(stop) + 1 if stop else 0
        for step in range(max_new - 1):
            self._run_step(lay, step)
            produced = step + 2
            if produced % self.check_every == 0 or produced == max_new:
                if self._check(lay, produced, checked, overlap, stop, decode, stopped):
                    break
                checked = produced
        else:
            self._check(lay, produced, checked, overlap, stop, decode, stopped)
        tokens = lay.out[:, :produced].cpu()
        self._sync()
        t2 = time.perf_counter()
        self.stats.prefill_s += t1 - t0
        self.stats.decode_s += t2 - t1 - (self.stats.capture_s - capture_before)
        self.stats.steps += produced - 1
        self.stats.chunks.append(t2 - t0)
        rows: list[list[int]] = []
        for r in range(lay.rows):
            row = tokens[r].tolist()
            if self.eos_token_id is not None and self.eos_token_id in row:
                row = row[: row.index(self.eos_token_id)]
            if r in stopped:
                row = row[: stopped[r]]
            rows.append(row)
        return rows

    def _check(
        self,
        lay: _Layout,
        produced: int,
        checked: int,
        overlap: int,
        stop: str | None,
        decode: Callable[[list[int]], str] | None,
        stopped: dict[int, int],
    ) -> bool:
        """Host-side check after ``produced`` tokens; True when every row has finished."""
        done = lay.done.cpu()
        if stop and decode is not None:
            tokens = lay.out[:, :produced].cpu()
            for r in range(lay.rows):
                if r in stopped:
                    continue
                row = tokens[r].tolist()
                if self.eos_token_id is not None and self.eos_token_id in row:
                    row = row[: row.index(self.eos_token_id)]
                lo = max(0, checked - overlap)
                if stop not in decode(row[lo:]):
                    continue
                for end in range(max(lo + 1, checked), len(row) + 1):  # first token completing the stop
                    if stop in decode(row[lo:end]):
                        stopped[r] = end
                        break
            if stopped:
                idx = torch.tensor(sorted(stopped), device=self.device)
                lay.done.index_fill_(0, idx, True)
                done[idx.cpu()] = True
        return bool(done.all())


def _residual_linear(
    x: torch.Tensor, inp: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
) -> torch.Tensor:
    """``x + inp Wᵀ (+ b)``, the residual accumulated by the GEMM (``addmm``: one kernel, one rounding)."""
    out = torch.addmm(x.reshape(-1, x.shape[-1]), inp.reshape(-1, inp.shape[-1]), weight.t())
    if bias is not None:
        out += bias
    return out.view(x.shape)


_TOP_P_OK: dict[str, bool] = {}


def _sort_top_p_keep(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
    probs = torch.softmax(sorted_logits, -1)
    keep = (probs.cumsum(-1) - probs) < top_p
    return torch.zeros_like(keep).scatter_(-1, order, keep)


def _top_p_kernel_works(device: torch.device) -> bool:
    """True when the Triton nucleus cut keeps exactly the sort's tokens on random (tie-free) logits."""
    key = str(device)
    if key not in _TOP_P_OK:
        try:
            from sf_train.fast.kernels import top_p_threshold

            gen = torch.Generator(device=device).manual_seed(0)
            ok = True
            for scale, top_p in ((1.0, 0.95), (6.0, 0.9), (30.0, 0.95), (0.05, 0.5)):
                logits = torch.randn(8, 50_000, device=device, generator=gen) * scale
                got = logits >= top_p_threshold(logits, top_p)[:, None]
                ok = ok and bool(torch.equal(got, _sort_top_p_keep(logits, top_p)))
            _TOP_P_OK[key] = ok
        except Exception:  # no Triton build for this device: keep the sort
            _TOP_P_OK[key] = False
    return _TOP_P_OK[key]


def _rows_contiguous(t: torch.Tensor) -> torch.Tensor:
    """``t`` itself when its rows are contiguous (a column slice of a fused projection), else a copy."""
    return t if t.dim() == 2 and t.stride(-1) == 1 else t.contiguous()


def _pow2_at_least_16(n: int) -> bool:
    return n >= 16 and n & (n - 1) == 0


def _triton_ok() -> bool:
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True
