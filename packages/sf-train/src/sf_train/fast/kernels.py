"""Triton kernels of the fast paths, one import for all (imported only when Triton is installed).

The kernels live by job: :mod:`~sf_train.fast.attention_kernels` (flash-decoding over the shared
prefix cache and each sequence's generated cache), :mod:`~sf_train.fast.norm_kernels` (RMSNorm,
fused residual add), :mod:`~sf_train.fast.rope_kernels` (rotary embedding + cache write),
:mod:`~sf_train.fast.swiglu_kernels` and :mod:`~sf_train.fast.sampling_kernels` (the nucleus cut).
This module re-exports their public names.
"""

from __future__ import annotations

from sf_train.fast.attention_kernels import DecodeAttentionScratch, decode_attention
from sf_train.fast.norm_kernels import RMSNormFunction, add_rms_norm, rms_norm
from sf_train.fast.rope_kernels import rope_and_store
from sf_train.fast.sampling_kernels import top_p_threshold
from sf_train.fast.swiglu_kernels import SwiGLUFunction, swiglu_forward, swiglu_grad, swiglu_split

__all__ = [
    "DecodeAttentionScratch",
    "RMSNormFunction",
    "SwiGLUFunction",
    "add_rms_norm",
    "decode_attention",
    "rms_norm",
    "rope_and_store",
    "swiglu_forward",
    "swiglu_grad",
    "swiglu_split",
    "top_p_threshold",
]
