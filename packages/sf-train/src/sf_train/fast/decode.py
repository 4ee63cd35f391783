"""`SharedPrefixDecoder`: sampling k completions per prompt fast with plain transformers weights.

Why `generate` is slow here (measured on the H100, transformers 5.17, batch 64, prompt 512):
every decode step launches thousands of small kernels from Python (launch-bound), the sdpa path
repeats K/V from 8 to 32 heads and copies the growing cache every step, and the k samples of a
prompt each carry their own copy of the prompt's K/V. This decoder:

* runs the prompt **once** per prompt (prefill through the model's own forward) and keeps one
  prefix K/V cache per prompt, read by all k samples (``G`` prompts → ``B = G·k`` rows);
* keeps the generated K/V in static per-row buffers written in place (no copies);
* computes attention GQA-aware (queries grouped per KV head, K/V never repeated), in fp32
  softmax, either with a Triton flash-decoding kernel (:mod:`sf_train.fast.attention_one_launch`; reads only
  the filled part of the cache) or with torch matmuls over fixed-size buckets of the cache;
* decodes with **merged, fused projection weights** when memory allows (``merge_weights``,
  :mod:`sf_train.fast.merged`): per layer one ``[q | k | v]`` and one ``[gate | up]`` matrix with
  the LoRA adapter folded in, so a step runs 4 GEMMs per layer and no LoRA kernels;
* captures one decode step (all layers, the LM head and top-p sampling) as a **CUDA graph** and
  replays it (one graph with Triton, one per bucket of 128 positions with torch);
* samples like transformers (:mod:`sf_train.fast.sampling`; on CUDA a split-vocabulary Triton
  sampler, no sort) and stops a row at EOS or, checked on the host every ``check_every`` steps,
  at the stop string (the row keeps exactly the tokens up to the one that completes it).

Without merged weights the layers' own modules (norms, projections, MLP, rotary embedding) are
called, so a PEFT LoRA adapter injected into them is applied as it is; either way the model's
weights are never modified, and each call sees the current adapter. Supported: Llama, Mistral (no
sliding window in reach), Qwen2, Qwen3 decoder stacks; :func:`unsupported_reason` says why another
model is not (callers fall back to ``generate``). On CPU the same step runs eagerly (what the tests
check against ``generate``).
"""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import torch

from sf_train.fast import sampling
from sf_train.fast._model import causal_lm
from sf_train.fast.decode_layout import DecodeStats, Layout
from sf_train.fast.decode_step import DecodeStep
from sf_train.fast.decode_stop import check_stop
from sf_train.fast.decode_support import pow2_at_least_16, sliding_window, triton_ok, unsupported_reason
from sf_train.fast.merged import MergedLayer, merge_layer, merged_bytes

__all__ = ["DecodeStats", "SharedPrefixDecoder", "unsupported_reason"]


_RESIDUAL_NORM_AUTO = True
"""What ``residual_norm="auto"`` picks (measured on the H200: see the package README)."""


class SharedPrefixDecoder(DecodeStep):
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
        top_p_kernel: How to sample (:mod:`sf_train.fast.sampling`): ``"auto"`` (on CUDA the
            split-vocabulary Triton sampler once its cut agrees with the sort on this device),
            True / ``"split"`` (that sampler, also on CPU through Triton's interpreter),
            ``"single"`` (the one-program-per-row cut, then torch's race), False (a sort).
        residual_norm: Merged weights with Triton: add each residual in the following RMSNorm's
            kernel (``x + Δ`` rounded to bf16, as the model's own add does) instead of accumulating
            it in the o / down GEMM (one rounding). ``"auto"``: on (see the module docstring).
        attention_options: Keyword arguments for
            :class:`sf_train.fast.attention_kernels.DecodeAttentionScratch`
            (``split_prefix``, ``split_gen``, ``block_n``, ``fused_merge``, ``one_launch``); by
            default the generated cache is one split and every split of both caches, and their
            merge, run in one launch per layer (:mod:`sf_train.fast.attention_one_launch`; on the
            H200 at batch 128 and 1.5k context 7% faster than two launches, at batch 64 1.6%).
        blas_library: The cuBLAS back end (``torch.backends.cuda.preferred_blas_library``) while a
            decode step is captured (or, without graphs, run), restored afterwards: ``"auto"``
            (``"cublaslt"`` on CUDA: its heuristics pick faster kernels for the narrow batch-64/128
            projections, the down projection most, about 0.2 ms of a 6.6 ms step on an H200),
            ``"cublaslt"`` / ``"cublas"``, or None (leave torch's setting); off the GPU, None.

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
        residual_norm: bool | str = "auto",
        attention_options: Mapping[str, Any] | None = None,
        blas_library: str | None = "auto",
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
        triton_shape_ok = pow2_at_least_16(self.head_dim)  # the kernels tile whole heads
        if attention == "auto":
            use_triton = self.device.type == "cuda" and triton_ok() and triton_shape_ok
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
        sampling.resolve_method(top_p_kernel, self.device, 1.0, 0.5)  # validates the value
        self.top_p_kernel = top_p_kernel
        if residual_norm not in (True, False, "auto"):
            raise ValueError(f"residual_norm must be True, False or 'auto' (got {residual_norm!r})")
        self.residual_norm = residual_norm
        self.attention_options = dict(attention_options or {})
        if blas_library == "auto":
            blas_library = "cublaslt" if self.device.type == "cuda" else None
        if blas_library not in (None, "cublas", "cublaslt"):
            raise ValueError(f"unknown blas_library {blas_library!r}")
        self.blas_library = blas_library if self.device.type == "cuda" else None  # CPU: no cuBLAS
        self._method = "greedy"
        self._res_norm = False
        self.stats = DecodeStats()
        self._sampling: tuple[float, float] = (1.0, 1.0)

    def _want_merged(self) -> bool:
        if self.merge_weights is False:
            return False
        if self.merge_weights == "auto":
            if self.device.type != "cuda":
                return False
            free, _ = torch.cuda.mem_get_info(self.device)
            return free > merged_bytes(self.layers) + 4 * 1024**3
        return True

    def _merge(self) -> list[MergedLayer] | None:
        """Fused, adapter-folded projection matrices of every layer (None if a layer cannot be merged)."""
        merged = []
        for layer in self.layers:
            m = merge_layer(layer, self.dtype)
            if m is None:
                return None
            merged.append(m)
        return merged

    def _run_step(self, lay: Layout, step: int) -> None:
        width = (
            lay.gen_len
            if self.attention == "triton"
            else min(lay.gen_len, (step // self.bucket + 1) * self.bucket)
        )
        if not self.cuda_graphs:
            with self._blas():
                self._step(lay, width)
            return
        graph = lay.graphs.get(width)
        if graph is None:
            with self._blas():
                graph = self._capture(lay, width)
        graph.replay()

    @contextlib.contextmanager
    def _blas(self) -> Iterator[None]:
        """``preferred_blas_library`` set to ``self.blas_library`` inside, torch's own outside."""
        if self.blas_library is None:
            yield
            return
        old = torch.backends.cuda.preferred_blas_library()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "an experimental feature"
            torch.backends.cuda.preferred_blas_library(self.blas_library)
        try:
            yield
        finally:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.backends.cuda.preferred_blas_library(old)

    def _capture(self, lay: Layout, width: int) -> torch.cuda.CUDAGraph:
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

    def _prefill(self, lay: Layout, prompts: Sequence[Sequence[int]]) -> None:
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
        if self._method == "split":  # a fresh Philox seed per chunk of prompts, from torch's generator
            lay.seed.fill_(int(torch.randint(0, 2**62, (1,))))
            self._seed = lay.seed
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
            temperature: 0 = greedy.
            top_p: Nucleus mass (1 = off).
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
        window = sliding_window(self.cfg)
        if window is not None and window < prefix_len + gen_len:
            raise ValueError(f"sliding window {window} < prompt + completion length {prefix_len + gen_len}")
        self._method = sampling.resolve_method(self.top_p_kernel, self.device, temperature, top_p)
        self.stats.sampler = self._method
        self.stats.top_p_kernel = self._method in ("split", "single") and top_p < 1.0
        want_merged = self._want_merged()
        lay = Layout(self, groups, k, prefix_len, gen_len)
        if want_merged:
            self._sync()
            start = time.perf_counter()
            lay.merged = self._merge()
            self._sync()
            self.stats.merge_s = time.perf_counter() - start
            self.stats.merged = lay.merged is not None
        auto_res = self.residual_norm == "auto" and _RESIDUAL_NORM_AUTO
        self._res_norm = (self.residual_norm is True or auto_res) and lay.merged is not None
        self._res_norm = self._res_norm and self.attention == "triton"
        self.stats.residual_norm = self._res_norm
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
        lay: Layout,
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
                if check_stop(lay, self.eos_token_id, produced, checked, overlap, stop, decode, stopped):
                    break
                checked = produced
        else:
            check_stop(lay, self.eos_token_id, produced, checked, overlap, stop, decode, stopped)
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
