"""LoRALinearFunction: PEFT's LoRA linear values and gradients with the LoRA term inside the base GEMM."""

from __future__ import annotations

import pytest
import torch
from peft import LoraConfig, get_peft_model

from sf_train.fast.lora import fused_lora_forward


class _Block(torch.nn.Module):
    def __init__(self, bias: bool) -> None:
        super().__init__()
        self.proj = torch.nn.Linear(16, 24, bias=bias)


def lora_block(bias: bool = False, **lora) -> torch.nn.Module:
    torch.manual_seed(0)
    options = dict(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["proj"])
    model = get_peft_model(_Block(bias), LoraConfig(**{**options, **lora}))
    for name, param in model.named_parameters():
        if "lora_" in name:
            param.data.normal_(0, 0.3)
    return model


def grads(model, forward, x_grad=True):
    x = torch.randn(3, 5, 16, generator=torch.Generator().manual_seed(1), requires_grad=x_grad)
    out = forward(model.base_model.model.proj, x)
    (out * torch.linspace(-1, 1, out.numel()).reshape(out.shape)).sum().backward()
    named = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return out.detach(), None if x.grad is None else x.grad.clone(), named


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("x_grad", [True, False])
def test_values_and_gradients_equal_the_peft_module(bias, x_grad):
    want = grads(lora_block(bias), lambda m, x: m(x), x_grad)
    seen = []

    def fused(module, x):
        seen.append(True)
        return fused_lora_forward(module, x)

    got = grads(lora_block(bias), fused, x_grad)
    assert seen
    torch.testing.assert_close(got[0], want[0])
    if x_grad:
        torch.testing.assert_close(got[1], want[1])
    else:
        assert got[1] is None and want[1] is None
    assert got[2].keys() == want[2].keys() and len(want[2]) == 2  # A and B (the base layer is frozen)
    for name, grad in want[2].items():
        torch.testing.assert_close(got[2][name], grad, msg=name)


def test_the_fused_node_is_what_runs():
    block = lora_block()
    x = torch.randn(2, 16, requires_grad=True)
    out = fused_lora_forward(block.base_model.model.proj, x)
    assert type(out.grad_fn).__name__ == "LoRALinearFunctionBackward"


@pytest.mark.parametrize("lora", [dict(lora_dropout=0.1), dict(use_dora=True)])
def test_layers_it_cannot_reproduce_keep_their_own_forward(lora):
    block = lora_block(**lora)
    layer, x = block.base_model.model.proj, torch.randn(2, 16)
    block.eval()  # dropout off, so the two calls agree
    out = fused_lora_forward(layer, x)
    assert out.grad_fn is None or "LoRALinearFunction" not in type(out.grad_fn).__name__
    torch.testing.assert_close(out, layer(x))


def test_disabled_adapter_is_the_base_layer():
    block = lora_block()
    layer, x = block.base_model.model.proj, torch.randn(2, 16)
    with block.disable_adapter():
        torch.testing.assert_close(fused_lora_forward(layer, x), layer.get_base_layer()(x))


def test_bf16_under_autocast_is_close_to_peft():
    block = lora_block()
    block.base_model.model.proj.get_base_layer().to(torch.bfloat16)
    layer = block.base_model.model.proj
    x = torch.randn(4, 16, dtype=torch.bfloat16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got, want = fused_lora_forward(layer, x), layer(x)
    assert got.dtype == torch.bfloat16
    torch.testing.assert_close(got.float(), want.float(), rtol=2e-2, atol=2e-2)
