"""Fast transformers-only generation.

:class:`~sf_train.fast.decode.SharedPrefixDecoder` behind the `HFWorkflowGenerator` interface.

Same inputs, outputs and accounting as :class:`~sf_train.generate.hf.HFWorkflowGenerator`
(prompts tokenized with the tokenizer's own special tokens, k samples per prompt, official
sampling settings, cut after the stop string), but the k samples of a prompt share its prefix
cache, attention is GQA-aware and, on CUDA, each decode step is one CUDA graph replay. Models the
decoder does not support (see :func:`~sf_train.fast.decode.unsupported_reason`) fall back to
``model.generate``; :attr:`FastHFWorkflowGenerator.fallback_reason` says why.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sf_train.generate.base import GenerationParams
from sf_train.generate.hf import HFWorkflowGenerator

__all__ = ["FastHFWorkflowGenerator"]


class FastHFWorkflowGenerator(HFWorkflowGenerator):
    """Sample workflows with the shared-prefix decoder (CUDA graphs on GPU).

    Args:
        model: A causal LM or ``PeftModel`` (its active adapter is used; its weights are never modified).
        tokenizer: Its tokenizer.
        params: Sampling settings (official defaults); ``batch_size`` is rows per decode batch.
        prompt_fn: Problem → prompt, for :meth:`generate`.
        attention: ``"auto"`` (Triton on CUDA when installed), ``"triton"`` or ``"torch"``.
        cuda_graphs: Replay decode steps as CUDA graphs (CUDA only).
        merge_weights: Decode with fused projection matrices with the adapter folded in
            (:class:`~sf_train.fast.decode.SharedPrefixDecoder`; ``"auto"``: on CUDA when memory allows).
        top_p_kernel: How to sample (``"auto"``: on CUDA the split-vocabulary Triton sampler, no
            sort; see :mod:`sf_train.fast.sampling`).
        decoder_options: Further keyword arguments of the decoder (``residual_norm``,
            ``attention_options``), for measuring its levers.

    Attributes:
        fallback_reason: Why the last call used ``model.generate`` instead (None if it did not).
        last_stats: :class:`~sf_train.fast.decode.DecodeStats` of the last fast call.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        params: GenerationParams | None = None,
        *,
        prompt_fn: Callable[[Any], str] | None = None,
        attention: str = "auto",
        cuda_graphs: bool = True,
        merge_weights: bool | str = "auto",
        top_p_kernel: bool | str = "auto",
        decoder_options: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(model, tokenizer, params, prompt_fn=prompt_fn)
        self.attention = attention
        self.cuda_graphs = cuda_graphs
        self.merge_weights = merge_weights
        self.top_p_kernel = top_p_kernel
        self.decoder_options = dict(decoder_options or {})
        self.fallback_reason: str | None = None
        self.last_stats: Any = None

    def _sample(self, prompts: Sequence[str], k: int) -> list[list[str]]:
        import torch

        from sf_train.fast.decode import SharedPrefixDecoder, unsupported_reason

        self.fallback_reason = unsupported_reason(self.model)
        if self.fallback_reason is not None:
            return super()._sample(prompts, k)
        tok, p = self.tokenizer, self.params
        decoder = SharedPrefixDecoder(
            self.model,
            pad_token_id=tok.pad_token_id,
            eos_token_id=tok.eos_token_id,
            attention=self.attention,
            cuda_graphs=self.cuda_graphs,
            merge_weights=self.merge_weights,
            top_p_kernel=self.top_p_kernel,
            **self.decoder_options,
        )

        def decode(ids: list[int]) -> str:
            return tok.decode(ids, skip_special_tokens=True)

        encoded = [tok(prompt)["input_ids"] for prompt in prompts]
        devices = [decoder.device] if decoder.device.type == "cuda" else []
        rng = torch.random.fork_rng(devices=devices) if p.seed is not None else contextlib.nullcontext()
        start = time.perf_counter()
        try:
            with rng:
                rows = decoder.generate(
                    encoded,
                    k,
                    max_new_tokens=p.max_new_tokens,
                    temperature=p.temperature,
                    top_p=p.top_p,
                    batch_size=p.batch_size,
                    stop=p.stop,
                    decode=decode,
                    seed=p.seed,
                )
        finally:
            self.seconds += time.perf_counter() - start
        self.last_stats = decoder.stats
        self.new_tokens += decoder.stats.new_tokens
        return [[decode(ids) for ids in group] for group in rows]
