"""The GPU speed path of sf-train (see the "GPU speed" section of the package README).

* :class:`FastScoreDPOTrainer` (``sf_train.fast.dpo``): Score-DPO with reference log-probs
  computed once, one shared-prefix packed sequence per pair, fused LoRA projections
  (``sf_train.fast.lora``) and no gradient checkpointing.
* :class:`SharedPrefixDecoder` (``sf_train.fast.decode``): k-sample decoding with one prefix
  KV cache per prompt, GQA-aware attention that never repeats K/V, merged projection weights,
  a sort-free top-p cut and CUDA graphs; used by
  :class:`sf_train.generate.fast_hf.FastHFWorkflowGenerator`.

Names load lazily: importing this package does not import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sf_train.fast.decode import SharedPrefixDecoder
    from sf_train.fast.dpo import FastScoreDPOTrainer, SharedPrefixForward
    from sf_train.fast.packing import PackedPairs, pack_pairs

__all__ = ["FastScoreDPOTrainer", "PackedPairs", "SharedPrefixDecoder", "SharedPrefixForward", "pack_pairs"]

_LAZY = {
    "FastScoreDPOTrainer": "sf_train.fast.dpo",
    "SharedPrefixForward": "sf_train.fast.dpo",
    "PackedPairs": "sf_train.fast.packing",
    "pack_pairs": "sf_train.fast.packing",
    "SharedPrefixDecoder": "sf_train.fast.decode",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'sf_train.fast' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
