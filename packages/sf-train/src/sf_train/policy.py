"""The policy in memory: the base weights, the adapter of one iteration, and the sampler over it.

The loop keeps one :class:`Policy` for the whole run so that the base model is loaded once: the
generation stage asks it for a generator with an adapter, the local training launcher for the
model to train. It always reflects what is on disk: the adapter it holds is the one in the
directory it was given (a fresh seeded LoRA for None), and after training elsewhere (Ray Train)
it is marked stale so that the next request reloads the adapter from disk.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from sf_train.config import GenerationBackend, ScoreDPOConfig

__all__ = ["Policy", "generation_backend", "generator_devices"]


def generation_backend(config: ScoreDPOConfig) -> GenerationBackend:
    """The configured generation backend, ``auto`` resolved (fast-hf on CUDA, else hf)."""
    from sf_train.modeling import device_for

    backend = GenerationBackend(config.generation_backend)
    if backend != GenerationBackend.AUTO:
        return backend
    return GenerationBackend.HF if device_for(config) == "cpu" else GenerationBackend.FAST_HF


def generator_devices(config: ScoreDPOConfig) -> int:
    """Devices the generator occupies (vLLM: tensor × data parallel; else 1), for device-seconds."""
    if config.generation_backend == GenerationBackend.VLLM:
        return config.vllm_tensor_parallel_size * config.vllm_data_parallel_size
    return 1


class Policy:
    """The generator policy of a run (base + current adapter) and the generator sampling from it.

    Args:
        config: The run's config (model, LoRA, generation backend and parameters).
        model: A base causal LM already in memory; default: loaded from the config on first use.
        tokenizer: Its tokenizer; default: loaded from the config on first use.
        prompt_fn: Problem → generator prompt.
    """

    def __init__(
        self, config: ScoreDPOConfig, *, model: Any, tokenizer: Any, prompt_fn: Callable[[Any], str]
    ) -> None:
        """See the class docstring."""
        self.config = config
        self.tokenizer = tokenizer
        self.prompt_fn = prompt_fn
        self.model: Any = None
        self._base_model = model
        self._generator: Any = None
        self._adapter_loaded: Path | None | str = "none-yet"

    def model_for(self, adapter_dir: Path | None) -> Any:
        """The policy in memory = base + the adapter saved in ``adapter_dir`` (fresh LoRA if None)."""
        from sf_train.modeling import attach_lora, load_base_model, load_tokenizer

        if self.model is not None and self._adapter_loaded == adapter_dir:
            return self.model
        if self.tokenizer is None:
            self.tokenizer = load_tokenizer(self.config)
        if self.model is None:
            base = self._base_model if self._base_model is not None else load_base_model(self.config)
        else:
            base = self.model.unload()  # drop the in-memory adapter, keep the base weights
        self.model = attach_lora(base, self.config, adapter_dir)
        self._adapter_loaded = adapter_dir
        self._generator = None
        return self.model

    def generator_for(self, adapter_dir: Path | None) -> Any:
        """A workflow generator sampling with the adapter in ``adapter_dir`` (kept while it is current)."""
        from sf_train.generate.base import GenerationParams

        cfg = self.config
        params = GenerationParams.from_config(cfg)
        if cfg.generation_backend == GenerationBackend.VLLM:
            from sf_train.generate.vllm import VLLMWorkflowGenerator

            if self._generator is None or not isinstance(self._generator, VLLMWorkflowGenerator):
                self._generator = VLLMWorkflowGenerator(
                    cfg.model_name_or_path,
                    params,
                    prompt_fn=self.prompt_fn,
                    tensor_parallel_size=cfg.vllm_tensor_parallel_size,
                    data_parallel_size=cfg.vllm_data_parallel_size,
                    gpu_memory_utilization=cfg.vllm_gpu_memory_utilization,
                    max_model_len=cfg.vllm_max_model_len,
                    max_lora_rank=max(cfg.lora_r, 8),
                    dtype=cfg.dtype,
                    seed=cfg.seed,
                    sleep_between_calls=cfg.vllm_enable_sleep_mode,
                )
            self._generator.set_adapter(adapter_dir)
            return self._generator
        from sf_train.generate.hf import HFWorkflowGenerator

        self.model_for(adapter_dir)
        if self._generator is None:
            generator_class = HFWorkflowGenerator
            if generation_backend(cfg) == GenerationBackend.FAST_HF:
                from sf_train.generate.fast_hf import FastHFWorkflowGenerator

                generator_class = FastHFWorkflowGenerator
            self._generator = generator_class(self.model, self.tokenizer, params, prompt_fn=self.prompt_fn)
        return self._generator

    def trained(self, adapter_dir: Path) -> None:
        """The model in memory was trained in place and saved to ``adapter_dir``: it is current."""
        self._adapter_loaded = adapter_dir
        if self._generator is not None and hasattr(self._generator, "model"):
            self._generator.model = self.model

    def stale(self) -> None:
        """An adapter on disk is newer than the model in memory (trained elsewhere): reload next time."""
        self._adapter_loaded = "stale"
