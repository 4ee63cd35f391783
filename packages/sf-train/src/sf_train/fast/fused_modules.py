"""The model's RMSNorm, SwiGLU MLP and LoRA projections swapped for fused kernels during a forward.

:func:`fused_kernels_work` checks once per device that the Triton RMSNorm / SwiGLU (with their own
backward) match the modules they replace; :func:`classify_modules` finds those modules in a causal
LM; :func:`patched_modules` swaps their ``forward`` in for the duration of a ``with`` block (the
fused kernels, recomputing MLP activations, fused LoRA projections, no input casts under
autocast) and restores each module afterwards. Used by
:class:`sf_train.fast.dpo.SharedPrefixForward`.
"""

from __future__ import annotations

import contextlib
import functools
import warnings
from collections.abc import Iterator
from typing import Any

import torch

from sf_train.fast.mlp import recomputing_mlp_forward

__all__ = ["classify_modules", "fused_kernels_work", "patched_modules"]


_NORM_CLASSES = ("LlamaRMSNorm", "MistralRMSNorm", "Qwen2RMSNorm", "Qwen3RMSNorm")
_MLP_CLASSES = ("LlamaMLP", "MistralMLP", "Qwen2MLP", "Qwen3MLP")
_FUSED_OK: dict[str, bool] = {}


def _self_test(device: torch.device) -> None:
    """Raise unless the fused RMSNorm and SwiGLU match the eager modules (values and gradients)."""
    from transformers.models.llama.modeling_llama import LlamaRMSNorm

    from sf_train.fast.norm_kernels import RMSNormFunction
    from sf_train.fast.swiglu_kernels import SwiGLUFunction

    gen = torch.Generator(device=device).manual_seed(0)
    x = torch.randn(64, 4096, device=device, generator=gen)
    weight = torch.randn(4096, device=device, generator=gen)
    grad = torch.randn(64, 4096, device=device, generator=gen)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    eager = LlamaRMSNorm(4096, eps=1e-5).to(device)
    eager.weight.data.copy_(weight)
    eager.weight.requires_grad_(False)
    ya, yb = eager(xa), RMSNormFunction.apply(xb, weight, 1e-5)
    (ya * grad).sum().backward()
    (yb * grad).sum().backward()
    torch.testing.assert_close(yb, ya, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(xb.grad, xa.grad, rtol=1e-3, atol=1e-4)
    g, u = x.clone().requires_grad_(), grad.clone().requires_grad_()
    g2, u2 = x.clone().requires_grad_(), grad.clone().requires_grad_()
    ha, hb = torch.nn.functional.silu(g) * u, SwiGLUFunction.apply(g2, u2)
    (ha * weight).sum().backward()
    (hb * weight).sum().backward()
    torch.testing.assert_close(hb, ha, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(g2.grad, g.grad, rtol=1e-3, atol=1e-4)
    torch.testing.assert_close(u2.grad, u.grad, rtol=1e-3, atol=1e-4)


def fused_kernels_work(device: torch.device) -> bool:
    """True on CUDA when Triton imports and the fused RMSNorm and SwiGLU match the eager modules."""
    if device.type != "cuda":
        return False
    key = str(device)
    if key not in _FUSED_OK:
        try:
            with torch.enable_grad():
                _self_test(device)
            _FUSED_OK[key] = True
        except Exception as exc:  # no Triton, or a kernel that does not build here: keep the eager modules
            warnings.warn(
                f"sf-train: fused RMSNorm/SwiGLU disabled ({type(exc).__name__}: {exc})", stacklevel=2
            )
            _FUSED_OK[key] = False
    return _FUSED_OK[key]


def _fused_norm_forward(module: Any, x: torch.Tensor) -> torch.Tensor:
    from sf_train.fast.norm_kernels import RMSNormFunction

    return RMSNormFunction.apply(x, module.weight, float(module.variance_epsilon))


def _fused_mlp_forward(module: Any, x: torch.Tensor) -> torch.Tensor:
    from sf_train.fast.swiglu_kernels import SwiGLUFunction

    return module.down_proj(SwiGLUFunction.apply(module.gate_proj(x), module.up_proj(x)))


def _mlp_forward(fused: bool, recompute: bool) -> Any:
    if recompute:
        return lambda module, x: recomputing_mlp_forward(module, x, fused)
    return _fused_mlp_forward if fused else None


def classify_modules(lm: Any) -> tuple[list[Any], list[Any], list[Any]]:
    """(Llama-style RMSNorms, SwiGLU MLPs, PEFT tuner layers) of ``lm``."""
    try:
        from peft.tuners.tuners_utils import BaseTunerLayer
    except ImportError:  # pragma: no cover - peft is a dependency
        BaseTunerLayer = ()  # noqa: N806
    norms, mlps, tuners = [], [], []
    for module in lm.modules():
        name = type(module).__name__
        if name in _NORM_CLASSES and hasattr(module, "variance_epsilon"):
            norms.append(module)
        elif (
            name in _MLP_CLASSES
            and getattr(getattr(module, "config", None), "hidden_act", None) in ("silu", "swish")
            and all(hasattr(module, a) for a in ("gate_proj", "up_proj", "down_proj"))
        ):
            mlps.append(module)
        elif BaseTunerLayer and isinstance(module, BaseTunerLayer):
            tuners.append(module)
    return norms, mlps, tuners


@contextlib.contextmanager
def patched_modules(
    modules: tuple[list[Any], list[Any], list[Any]],
    fused: bool,
    recompute_mlp: bool,
    keep_dtype: bool,
    fused_lora: bool = False,
) -> Iterator[None]:
    """While active, patch in the fast training paths that are switched on.

    These are: fused RMSNorm/SwiGLU forwards (``fused``), MLPs that recompute their SwiGLU output
    in backward instead of keeping it (``recompute_mlp``, :mod:`sf_train.fast.mlp`), LoRA linear
    layers as one node with the LoRA term accumulated into the base GEMM (``fused_lora``,
    :mod:`sf_train.fast.lora`; layers it cannot reproduce keep PEFT's forward), and LoRA layers
    that do not cast their input to the adapter's float32 (``keep_dtype``, under autocast, where the
    matmul casts anyway: same values, but no float32 and bf16 copies of every LoRA input, one of them
    kept for backward).
    """
    norms, mlps, tuners = modules
    patched = []
    if fused:
        for module in norms:
            if "forward" not in module.__dict__:
                module.forward = functools.partial(_fused_norm_forward, module)
                patched.append(module)
    mlp_forward = _mlp_forward(fused, recompute_mlp)
    if mlp_forward is not None:
        for module in mlps:
            if "forward" not in module.__dict__:
                module.forward = functools.partial(mlp_forward, module)
                patched.append(module)
    if fused_lora:
        from peft.tuners.lora import Linear as LoraLinear

        from sf_train.fast.lora import fused_lora_forward

        for module in tuners:
            if isinstance(module, LoraLinear) and "forward" not in module.__dict__:
                module.forward = functools.partial(fused_lora_forward, module)
                patched.append(module)
    casts = []
    if keep_dtype:
        for module in tuners:
            casts.append((module, getattr(module, "cast_input_dtype_enabled", True)))
            module.cast_input_dtype_enabled = False
    try:
        yield
    finally:
        for module in patched:
            del module.forward
        for module, value in casts:
            module.cast_input_dtype_enabled = value
