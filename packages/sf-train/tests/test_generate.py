"""Generation backends: transformers for real on a tiny model; vLLM at its CPU-side seams."""

from __future__ import annotations

import asyncio
import sys
import types
from dataclasses import dataclass, field

import pytest

from sf_train import MissingDependencyError
from sf_train.generate.base import GenerationParams, cut_at_stop
from sf_train.generate.hf import HFWorkflowGenerator
from sf_train.testing import build_tiny_llama


def test_cut_at_stop_keeps_the_stop_string():
    assert cut_at_stop("a <graph>x</graph> trailing </graph>", "</graph>") == "a <graph>x</graph>"
    assert cut_at_stop("no stop here", "</graph>") == "no stop here"
    assert cut_at_stop("x</graph>", None) == "x</graph>"


def test_params_default_to_the_official_sampling():
    p = GenerationParams()
    assert (p.temperature, p.top_p, p.max_new_tokens, p.stop) == (0.2, 0.95, 1000, "</graph>")


@pytest.fixture(scope="module")
def tiny(tokenizer):
    return build_tiny_llama(tokenizer, seed=0)


def test_hf_generates_k_per_prompt_reproducibly(tiny, tokenizer):
    gen = HFWorkflowGenerator(
        tiny, tokenizer, GenerationParams(max_new_tokens=12, temperature=1.0, seed=5, batch_size=4)
    )
    prompts = ["Output a workflow: ", "<graph>", "class Workflow:"]
    tiny.train()
    first = gen.generate_texts(prompts, 3)
    assert [len(g) for g in first] == [3, 3, 3]
    assert len({t for g in first for t in g}) > 3  # sampling, not one string repeated
    assert gen.generate_texts(prompts, 3) == first  # same seed, same samples (batches of 4 // 3 = 1 prompt)
    assert gen.new_tokens > 0 and gen.seconds > 0
    assert tiny.training  # generation switches to eval and back


def test_hf_stops_at_the_stop_string(tokenizer):
    """A model that always continues with '</graph>' after the prompt stops right there."""
    import torch

    model = build_tiny_llama(tokenizer, seed=0)
    stop_ids = tokenizer("</graph>", add_special_tokens=False)["input_ids"]
    with torch.no_grad():  # make the LM head prefer the stop string's tokens in turn, then anything
        model.lm_head.weight.zero_()
        model.lm_head.bias = None
    calls = {"n": 0}
    original = model.forward

    def forward(*args, **kwargs):
        out = original(*args, **kwargs)
        logits = torch.full_like(out.logits, -1e4)
        logits[..., stop_ids[min(calls["n"], len(stop_ids) - 1)]] = 0.0
        calls["n"] += 1
        out.logits = logits
        return out

    model.forward = forward
    gen = HFWorkflowGenerator(model, tokenizer, GenerationParams(max_new_tokens=30, temperature=0.0))
    (texts,) = gen.generate_texts(["prompt "], 1)
    assert texts == ["</graph>"]
    assert calls["n"] == len(stop_ids)  # generation ended at the stop string, not at max_new_tokens


def test_generate_is_the_workflow_generator_shape(tiny, tokenizer):
    gen = HFWorkflowGenerator(
        tiny,
        tokenizer,
        GenerationParams(max_new_tokens=5, seed=0),
        prompt_fn=lambda problem: f"Task {problem}: ",
    )
    out = asyncio.run(gen.generate(["a", "b"], 2))
    assert [len(g) for g in out] == [2, 2]
    try:
        from sf_bench.protocols import WorkflowGenerator
    except ImportError:  # sf-bench not installed alongside: the structural shape is all that matters
        return
    assert isinstance(gen, WorkflowGenerator)


# ---- vLLM: a recording stand-in for the vllm module, to test our side of the seam ----------


@dataclass
class _Choice:
    text: str
    token_ids: list[int]


@dataclass
class _Out:
    outputs: list[_Choice]


@dataclass
class _LLM:
    kwargs: dict
    calls: list = field(default_factory=list)
    slept: int = 0
    woken: int = 0

    def generate(self, prompts, sampling, lora_request=None):
        self.calls.append((list(prompts), sampling, lora_request))
        return [
            _Out([_Choice(f"{p}#{i}</graph> tail", [1, 2]) for i in range(sampling["n"])]) for p in prompts
        ]

    def sleep(self, level):
        self.slept += 1

    def wake_up(self):
        self.woken += 1


@pytest.fixture
def fake_vllm(monkeypatch):
    engines = []
    vllm = types.ModuleType("vllm")
    vllm.SamplingParams = lambda **kw: kw
    vllm.LLM = lambda **kw: engines.append(_LLM(kw)) or engines[-1]
    lora_mod = types.ModuleType("vllm.lora")
    request_mod = types.ModuleType("vllm.lora.request")
    request_mod.LoRARequest = lambda name, id_, path: ("LoRARequest", name, id_, path)
    monkeypatch.setitem(sys.modules, "vllm", vllm)
    monkeypatch.setitem(sys.modules, "vllm.lora", lora_mod)
    monkeypatch.setitem(sys.modules, "vllm.lora.request", request_mod)
    return engines


def test_vllm_missing_extra_is_a_clear_error(monkeypatch):
    from sf_train.generate.vllm import VLLMWorkflowGenerator

    monkeypatch.setitem(sys.modules, "vllm", None)  # import vllm -> ImportError
    with pytest.raises(MissingDependencyError, match=r'pip install "sf-train\[vllm\]"'):
        VLLMWorkflowGenerator("some/model")


def test_vllm_maps_params_and_hot_swaps_adapters(fake_vllm, tmp_path):
    from sf_train.generate.vllm import VLLMWorkflowGenerator

    gen = VLLMWorkflowGenerator(
        "/models/base",
        GenerationParams(seed=3),
        tensor_parallel_size=2,
        max_lora_rank=8,
        sleep_between_calls=True,
    )
    assert gen.generate_texts(["p1", "p2"], 2) == [
        ["p1#0</graph>", "p1#1</graph>"],
        ["p2#0</graph>", "p2#1</graph>"],
    ]
    (engine,) = fake_vllm
    assert engine.kwargs["model"] == "/models/base" and engine.kwargs["enable_lora"] is True
    assert engine.kwargs["tensor_parallel_size"] == 2 and engine.kwargs["enable_sleep_mode"] is True
    _, sampling, lora = engine.calls[0]
    assert sampling == {
        "n": 2,
        "temperature": 0.2,
        "top_p": 0.95,
        "max_tokens": 1000,
        "stop": ["</graph>"],
        "include_stop_str_in_output": True,
        "seed": 3,
    }
    assert lora is None  # iteration 0: the base model

    for it in (1, 2):
        adapter = tmp_path / f"adapter-{it}"
        adapter.mkdir()
        (adapter / "adapter_config.json").write_text("{}")
        gen.set_adapter(adapter)
        gen.generate_texts(["p"], 1)
        assert engine.calls[-1][2] == ("LoRARequest", f"sf-train-{it}", it, str(adapter.resolve()))
    assert len(fake_vllm) == 1  # one engine, base weights loaded once
    assert (engine.slept, engine.woken) == (3, 2)
    assert gen.new_tokens == 2 * (4 + 1 + 1)
    with pytest.raises(FileNotFoundError):
        gen.set_adapter(tmp_path / "missing")


def test_data_parallel_sharding_round_trips():
    from sf_train.generate.vllm import shard, unshard

    items = list("abcdefg")
    parts = shard(items, 3)
    assert sorted(i for p in parts for i in p) == list(range(7)) and all(p for p in parts)
    assert unshard(parts, [[items[i].upper() for i in p] for p in parts], 7) == list("ABCDEFG")
