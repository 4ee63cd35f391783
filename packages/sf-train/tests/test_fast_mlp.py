"""SwiGLUDownLoRA: PEFT's LoRA MLP values and gradients without keeping silu(g)·u for backward."""

from __future__ import annotations

import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers import LlamaConfig
from transformers.models.llama.modeling_llama import LlamaMLP

from sf_train.fast.mlp import lora_parts, recomputing_mlp_forward


class _Block(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        config = LlamaConfig(
            hidden_size=16, intermediate_size=40, num_attention_heads=2, num_key_value_heads=2
        )
        self.mlp = LlamaMLP(config)


def lora_block(**lora) -> torch.nn.Module:
    torch.manual_seed(0)
    options = dict(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["gate_proj", "up_proj", "down_proj"])
    model = get_peft_model(_Block(), LoraConfig(**{**options, **lora}))
    for name, param in model.named_parameters():
        if "lora_" in name:
            param.data.normal_(0, 0.3)
    return model


def grads(model, forward):
    x = torch.randn(3, 5, 16, generator=torch.Generator().manual_seed(1), requires_grad=True)
    out = forward(model.base_model.model.mlp, x)
    (out * torch.linspace(-1, 1, out.numel()).reshape(out.shape)).sum().backward()
    named = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return out.detach(), x.grad.clone(), named


def test_values_and_gradients_equal_the_peft_module():
    assert lora_parts(lora_block().base_model.model.mlp.down_proj) is not None  # the recomputing node runs
    want = grads(lora_block(), lambda mlp, x: mlp(x))
    got = grads(lora_block(), lambda mlp, x: recomputing_mlp_forward(mlp, x, fused=False))
    torch.testing.assert_close(got[0], want[0])
    torch.testing.assert_close(got[1], want[1])
    assert got[2].keys() == want[2].keys() and len(want[2]) == 6  # A and B of gate, up, down
    for name, grad in want[2].items():
        torch.testing.assert_close(got[2][name], grad, msg=name)


@pytest.mark.parametrize("lora", [dict(lora_dropout=0.1), dict(use_dora=True)])
def test_layers_it_cannot_reproduce_are_not_taken_apart(lora):
    assert lora_parts(lora_block(**lora).base_model.model.mlp.down_proj) is None


def test_a_layer_it_cannot_reproduce_keeps_its_own_forward():
    block = lora_block(use_dora=True)
    mlp, x = block.base_model.model.mlp, torch.randn(2, 16)
    torch.testing.assert_close(recomputing_mlp_forward(mlp, x, fused=False), mlp(x))


def test_disabled_adapter_is_the_base_layer():
    block = lora_block()
    with block.disable_adapter():
        assert lora_parts(block.base_model.model.mlp.down_proj) is None
