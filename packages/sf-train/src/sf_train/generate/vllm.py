"""vLLM generation with the LoRA adapter hot-swapped each iteration (``sf-train[vllm]``).

vLLM is imported only when this backend is built (``require("vllm", extra="vllm")``). The
engine loads the *base* weights once, with ``enable_lora=True``; each iteration's adapter is
passed as a ``LoRARequest`` pointing at the adapter directory the loop saved, under a fresh
integer id, so vLLM loads it without a merged copy of the weights (the official code merged
the adapter into a full bf16 copy every iteration, ScoreFlow ``optimize.py:84-105``).

Sampling mirrors the official call (``generate.py:53-60``): temperature, top-p, ``max_tokens``,
``stop=["</graph>"]`` with the stop string kept in the output; each prompt is sampled ``k``
times (``n=k``, equivalent to repeating the prompt k times with ``n=1``).

Parallelism:

* tensor parallelism: ``tensor_parallel_size`` GPUs per engine (in-process engine);
* data parallelism: ``data_parallel_size`` > 1 runs that many independent engines, each in its
  own spawned process pinned to its own ``tensor_parallel_size`` GPUs (``CUDA_VISIBLE_DEVICES``),
  and shards the prompts across them for every call; the engines are started per call, so
  the adapter of the iteration is simply loaded at start.

Only the CPU-side seams (parameter mapping, adapter bookkeeping, sharding, output collection,
the missing-extra error) are tested here; the engine itself needs a GPU and the extra.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sf_train._imports import require
from sf_train.generate.base import BaseWorkflowGenerator, GenerationParams

__all__ = ["VLLMWorkflowGenerator", "shard", "unshard"]


def shard(items: Sequence[Any], parts: int) -> list[list[int]]:
    """Split ``range(len(items))`` into ``parts`` contiguous, nearly equal index lists."""
    n = len(items)
    bounds = [n * i // parts for i in range(parts + 1)]
    return [list(range(bounds[i], bounds[i + 1])) for i in range(parts)]


def unshard(shards: list[list[int]], results: list[list[Any]], n: int) -> list[Any]:
    """Put per-shard results back in input order."""
    out: list[Any] = [None] * n
    for indices, values in zip(shards, results, strict=True):
        for i, value in zip(indices, values, strict=True):
            out[i] = value
    return out


def _collect(outputs: Sequence[Any], k: int) -> tuple[list[list[str]], int]:
    """VLLM ``RequestOutput``s → (k texts per prompt in order, completion tokens in total)."""
    texts = [[choice.text for choice in out.outputs] for out in outputs]
    for group in texts:
        if len(group) != k:
            raise RuntimeError(f"vLLM returned {len(group)} samples for a prompt, expected {k}")
    tokens = sum(len(getattr(choice, "token_ids", None) or ()) for out in outputs for choice in out.outputs)
    return texts, tokens


def _dp_worker(
    gpu_ids: str,
    engine_kwargs: dict[str, Any],
    prompts: list[str],
    sampling_kwargs: dict[str, Any],
    lora: tuple[str, int, str] | None,
    k: int,
) -> tuple[list[list[str]], int]:
    """One data-parallel rank: its own engine on its own GPUs, one shard of prompts."""
    os.environ["CUDA_VISIBLE_DEVICES"] = gpu_ids
    vllm = require("vllm", extra="vllm")
    llm = vllm.LLM(**engine_kwargs)
    request = require("vllm.lora.request", extra="vllm").LoRARequest(*lora) if lora else None
    outputs = llm.generate(prompts, vllm.SamplingParams(**sampling_kwargs), lora_request=request)
    return _collect(outputs, k)


class VLLMWorkflowGenerator(BaseWorkflowGenerator):
    """Sample workflows with vLLM, the base model plus the current LoRA adapter.

    Args:
        model: Base model directory or cached hub id (never the merged model).
        params: Sampling settings.
        prompt_fn: Problem → prompt, for :meth:`generate`.
        tensor_parallel_size: GPUs per engine.
        data_parallel_size: Independent engines (each on its own GPUs).
        gpu_memory_utilization: Share of each GPU vLLM may take (leave room for training when the
            trainer shares the GPU).
        max_model_len: Context length.
        max_lora_rank: Largest LoRA rank vLLM must accept (>= the adapter's r).
        dtype: Weights dtype.
        seed: Engine seed.
        sleep_between_calls: Start the engine with ``enable_sleep_mode`` and put it to sleep
            (weights offloaded, KV cache freed) after every call, so training can use the GPU
            between generation rounds; it wakes up at the next call.
        engine_factory: Builds the in-process engine from keyword arguments; default ``vllm.LLM``.

    Raises:
        MissingDependencyError: vLLM is not installed (``pip install "sf-train[vllm]"``).
    """

    def __init__(
        self,
        model: str,
        params: GenerationParams | None = None,
        *,
        prompt_fn: Callable[[Any], str] | None = None,
        tensor_parallel_size: int = 1,
        data_parallel_size: int = 1,
        gpu_memory_utilization: float = 0.9,
        max_model_len: int = 10000,
        max_lora_rank: int = 16,
        dtype: str = "bfloat16",
        seed: int = 0,
        sleep_between_calls: bool = False,
        engine_factory: Callable[..., Any] | None = None,
    ) -> None:
        super().__init__(params, prompt_fn=prompt_fn)
        self._vllm = require("vllm", extra="vllm", purpose="the vllm generation backend")
        self.engine_factory = engine_factory or self._vllm.LLM
        self.tensor_parallel_size = tensor_parallel_size
        self.data_parallel_size = data_parallel_size
        self.engine_kwargs: dict[str, Any] = {
            "model": model,
            "dtype": dtype,
            "tensor_parallel_size": tensor_parallel_size,
            "gpu_memory_utilization": gpu_memory_utilization,
            "max_model_len": max_model_len,
            "enable_lora": True,
            "max_lora_rank": max_lora_rank,
            "max_loras": 1,
            "seed": seed,
        }
        self.sleep_between_calls = sleep_between_calls
        if sleep_between_calls:
            self.engine_kwargs["enable_sleep_mode"] = True
        self._asleep = False
        self._engine: Any = None
        self._lora: tuple[str, int, str] | None = None
        self._next_lora_id = 1
        self.seconds = 0.0
        self.new_tokens = 0

    # --- adapter hot-swap ---------------------------------------------------------------
    def set_adapter(self, path: str | Path | None) -> None:
        """Sample from the next call on with the adapter saved at ``path`` (None = base model).

        Every call registers a new ``(name, id, path)`` so vLLM never serves a stale cached
        adapter of an earlier iteration.
        """
        if path is None:
            self._lora = None
            return
        path = Path(path)
        if not (path / "adapter_config.json").exists():
            raise FileNotFoundError(f"no PEFT adapter at {path} (adapter_config.json missing)")
        lora_id = self._next_lora_id
        self._next_lora_id += 1
        self._lora = (f"sf-train-{lora_id}", lora_id, str(path.resolve()))

    @property
    def lora(self) -> tuple[str, int, str] | None:
        """The current ``(name, id, path)`` adapter, or None for the base model."""
        return self._lora

    def sampling_kwargs(self, k: int) -> dict[str, Any]:
        """Keyword arguments of ``vllm.SamplingParams`` for k samples per prompt."""
        p = self.params
        kwargs: dict[str, Any] = {
            "n": k,
            "temperature": p.temperature,
            "top_p": p.top_p,
            "max_tokens": p.max_new_tokens,
        }
        if p.stop:
            kwargs.update(stop=[p.stop], include_stop_str_in_output=True)
        if p.seed is not None:
            kwargs["seed"] = p.seed
        return kwargs

    # --- sampling -----------------------------------------------------------------------
    def _lora_request(self) -> Any:
        if self._lora is None:
            return None
        return require("vllm.lora.request", extra="vllm").LoRARequest(*self._lora)

    def _sample(self, prompts: Sequence[str], k: int) -> list[list[str]]:
        start = time.perf_counter()
        try:
            if self.data_parallel_size > 1:
                texts = self._sample_data_parallel(prompts, k)
            else:
                if self._engine is None:
                    self._engine = self.engine_factory(**self.engine_kwargs)
                elif self._asleep:
                    self._engine.wake_up()
                    self._asleep = False
                sampling = self._vllm.SamplingParams(**self.sampling_kwargs(k))
                outputs = self._engine.generate(list(prompts), sampling, lora_request=self._lora_request())
                texts, tokens = _collect(outputs, k)
                self.new_tokens += tokens
                if self.sleep_between_calls:
                    self._engine.sleep(level=1)
                    self._asleep = True
        finally:
            self.seconds += time.perf_counter() - start
        return texts

    def _sample_data_parallel(self, prompts: Sequence[str], k: int) -> list[list[str]]:
        tp = self.tensor_parallel_size
        shards = [s for s in shard(prompts, self.data_parallel_size) if s]
        ctx = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(max_workers=len(shards), mp_context=ctx) as pool:
            futures = [
                pool.submit(
                    _dp_worker,
                    ",".join(str(rank * tp + g) for g in range(tp)),
                    self.engine_kwargs,
                    [prompts[i] for i in indices],
                    self.sampling_kwargs(k),
                    self._lora,
                    k,
                )
                for rank, indices in enumerate(shards)
            ]
            results = [f.result() for f in futures]
        self.new_tokens += sum(tokens for _, tokens in results)
        return unshard(shards, [texts for texts, _ in results], len(prompts))
