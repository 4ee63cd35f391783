"""Fast generation: same greedy output as transformers' generate, same stop and top-p semantics (CPU path)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
import torch
from peft import LoraConfig, get_peft_model

from sf_train.fast.decode import SharedPrefixDecoder, unsupported_reason
from sf_train.generate.base import GenerationParams, cut_at_stop
from sf_train.generate.fast_hf import FastHFWorkflowGenerator
from sf_train.generate.hf import HFWorkflowGenerator
from sf_train.testing import build_tiny_llama

PROMPTS = ["Output a workflow: ", "<graph>", "class Workflow:\n    def __init__(self, config"]


@pytest.fixture(scope="module")
def lora_model(tokenizer):
    """A tiny GQA Llama (8 heads, 2 KV heads) with a non-zero LoRA adapter on every projection."""
    model = build_tiny_llama(tokenizer, hidden_size=64, num_heads=8, num_kv_heads=2, seed=3)
    model = get_peft_model(
        model,
        LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "up_proj"]),
    )
    gen = torch.Generator().manual_seed(0)
    for name, param in sorted(model.named_parameters()):
        if "lora_B" in name:
            param.data = torch.randn(param.shape, generator=gen) * 0.5
    return model


def greedy(max_new_tokens=24, stop=None, batch_size=4):
    return GenerationParams(max_new_tokens=max_new_tokens, temperature=0.0, stop=stop, batch_size=batch_size)


def test_greedy_output_equals_generate_with_the_adapter_applied(lora_model, tokenizer):
    expected = HFWorkflowGenerator(lora_model, tokenizer, greedy()).generate_texts(PROMPTS, 1)
    fast = FastHFWorkflowGenerator(lora_model, tokenizer, greedy(), attention="torch")
    got = fast.generate_texts(PROMPTS, 3)  # 4 rows per batch: one prompt (3 samples) per chunk, last padded
    assert fast.fallback_reason is None
    assert [g[0] for g in expected] == [g[0] for g in got]
    assert all(len(set(g)) == 1 for g in got)  # greedy: the k samples agree
    with lora_model.disable_adapter():
        base = HFWorkflowGenerator(lora_model, tokenizer, greedy()).generate_texts(PROMPTS, 1)
    assert base != expected  # the adapter really changes the output, so equality above means it was applied
    stats = fast.last_stats
    assert stats.rows == 9 and stats.new_tokens == fast.new_tokens > 0 and stats.attention == "torch"


def test_blas_library_option_is_checked_and_off_the_gpu_is_none(lora_model, tokenizer):
    from sf_train.fast.decode import SharedPrefixDecoder

    with pytest.raises(ValueError, match="blas_library"):
        SharedPrefixDecoder(lora_model, pad_token_id=tokenizer.pad_token_id, blas_library="mkl")
    for choice in ("auto", "cublaslt", None):
        dec = SharedPrefixDecoder(lora_model, pad_token_id=tokenizer.pad_token_id, blas_library=choice)
        assert dec.blas_library is None  # CPU: the step never touches torch's BLAS preference
        with dec._blas():
            pass


@pytest.mark.parametrize("attention", ["torch"])
def test_merged_projection_weights_give_the_same_greedy_output(lora_model, tokenizer, attention):
    expected = HFWorkflowGenerator(lora_model, tokenizer, greedy()).generate_texts(PROMPTS, 1)
    before = {n: p.detach().clone() for n, p in lora_model.named_parameters()}
    fast = FastHFWorkflowGenerator(lora_model, tokenizer, greedy(), attention=attention, merge_weights=True)
    got = fast.generate_texts(PROMPTS, 2)
    assert fast.last_stats.merged  # every layer was merged (q, k, v, o, up carry the adapter)
    assert [g[0] for g in expected] == [g[0] for g in got]
    after = dict(lora_model.named_parameters())
    assert all(torch.equal(after[n], p) for n, p in before.items())  # the model itself is untouched


def test_layers_that_cannot_be_merged_keep_their_modules(tokenizer):
    model = build_tiny_llama(tokenizer, hidden_size=64, num_heads=8, num_kv_heads=2, seed=3)
    model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, lora_dropout=0.1, target_modules=["q_proj"]))
    model.eval()
    expected = HFWorkflowGenerator(model, tokenizer, greedy()).generate_texts(PROMPTS, 1)
    fast = FastHFWorkflowGenerator(model, tokenizer, greedy(), attention="torch", merge_weights=True)
    assert [g[0] for g in fast.generate_texts(PROMPTS, 1)] == [g[0] for g in expected]
    assert not fast.last_stats.merged


def test_stop_string_cuts_where_generate_stops(lora_model, tokenizer):
    free = HFWorkflowGenerator(lora_model, tokenizer, greedy(stop=None)).generate_texts(PROMPTS, 1)
    text = free[0][0]
    stop = text[len(text) // 2 : len(text) // 2 + 3]  # a string the greedy continuation does produce
    assert stop.strip()
    want = HFWorkflowGenerator(lora_model, tokenizer, greedy(stop=stop)).generate_texts(PROMPTS, 1)
    decoder = SharedPrefixDecoder(
        lora_model,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        attention="torch",
        check_every=4,
    )
    ids = [tokenizer(p)["input_ids"] for p in PROMPTS]

    def decode(x):
        return tokenizer.decode(x, skip_special_tokens=True)

    rows = decoder.generate(ids, 2, max_new_tokens=24, temperature=0.0, stop=stop, decode=decode)
    # the row ends with the token that completes the stop string (the generator then cuts the text)
    got = [cut_at_stop(decode(g[0]), stop) for g in rows]
    assert got == [w[0] for w in want]
    assert stop in decode(rows[0][0]) and stop not in decode(rows[0][0][:-1])
    assert got[0].endswith(stop)
    assert decoder.stats.steps < 23 or any(stop not in w[0] for w in want)


def test_top_p_keeps_the_smallest_set_reaching_the_mass(lora_model, tokenizer):
    decoder = SharedPrefixDecoder(lora_model, pad_token_id=0, attention="torch")
    probs = torch.tensor([0.1, 0.4, 0.2, 0.3])  # sorted: .4 .3 | .2 .1 ; top_p .5 keeps the first two
    logits = probs.log().repeat(20000, 1)
    torch.manual_seed(0)
    decoder._sampling = (1.0, 0.5)
    counts = torch.bincount(decoder._sample(logits), minlength=4).float() / 20000
    assert counts[0] == 0 and counts[2] == 0
    assert counts[1] == pytest.approx(4 / 7, abs=0.015) and counts[3] == pytest.approx(3 / 7, abs=0.015)
    decoder._sampling = (2.0, 1.0)  # temperature only: p ∝ p^(1/2)
    counts = torch.bincount(decoder._sample(logits), minlength=4).float() / 20000
    expected = probs.sqrt() / probs.sqrt().sum()
    torch.testing.assert_close(counts, expected, atol=0.015, rtol=0)


def test_top_p_by_threshold_samples_the_same_nucleus(lora_model, monkeypatch):
    """The one-program threshold path keeps the sort's tokens with the same odds.

    The Triton cut itself is checked against the sort in ``TRITON_SCRIPT``; here a torch stand-in
    gives the cut.
    """
    pytest.importorskip("triton")
    from sf_train.fast import sampling_kernels

    def cut(logits, top_p):
        s, _ = torch.sort(logits, -1, descending=True)
        probs = torch.softmax(s, -1)
        keep = (probs.cumsum(-1) - probs) < top_p
        return s.masked_fill(~keep, float("inf")).amin(-1)

    monkeypatch.setattr(sampling_kernels, "top_p_threshold", cut)
    from sf_train.fast.sampling import resolve_method

    decoder = SharedPrefixDecoder(lora_model, pad_token_id=0, attention="torch", top_p_kernel="single")
    assert resolve_method("single", decoder.device, 1.0, 0.5) == "single"
    probs = torch.tensor([0.1, 0.4, 0.2, 0.3])
    logits = probs.log().repeat(20000, 1)
    torch.manual_seed(0)
    decoder._sampling = (1.0, 0.5)
    counts = torch.bincount(decoder._sample(logits), minlength=4).float() / 20000
    assert counts[0] == 0 and counts[2] == 0
    assert counts[1] == pytest.approx(4 / 7, abs=0.015) and counts[3] == pytest.approx(3 / 7, abs=0.015)


def test_sampling_is_seeded_and_the_k_samples_differ(lora_model, tokenizer):
    params = GenerationParams(max_new_tokens=12, temperature=1.0, top_p=0.95, stop=None, seed=7, batch_size=8)
    gen = FastHFWorkflowGenerator(lora_model, tokenizer, params, attention="torch")
    first = gen.generate_texts(PROMPTS[:2], 4)
    assert [len(g) for g in first] == [4, 4]
    assert len(set(first[0])) > 1
    assert gen.generate_texts(PROMPTS[:2], 4) == first


def test_head_dims_the_triton_kernels_cannot_tile_take_torch_attention(tokenizer):
    model = build_tiny_llama(tokenizer, hidden_size=96, num_heads=4, num_kv_heads=2)  # head_dim 24
    with pytest.raises(ValueError, match="power of two"):
        SharedPrefixDecoder(model, pad_token_id=0, eos_token_id=2, attention="triton")
    assert SharedPrefixDecoder(model, pad_token_id=0, eos_token_id=2).attention == "torch"


def test_unsupported_models_fall_back_to_generate(tokenizer):
    from transformers import GPT2Config, GPT2LMHeadModel

    model = GPT2LMHeadModel(
        GPT2Config(
            vocab_size=len(tokenizer),
            n_positions=256,
            n_embd=32,
            n_layer=1,
            n_head=2,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
    )
    assert "gpt2" in unsupported_reason(model)
    gen = FastHFWorkflowGenerator(model, tokenizer, greedy(max_new_tokens=5))
    out = gen.generate_texts(PROMPTS[:1], 1)
    assert gen.fallback_reason and len(out) == 1
    with pytest.raises(ValueError, match="cannot run"):
        SharedPrefixDecoder(model, pad_token_id=0)


TRITON_SCRIPT = textwrap.dedent("""
    import torch
    from transformers.models.llama.modeling_llama import LlamaRMSNorm, apply_rotary_pos_emb
    from sf_train.fast.kernels import (
        DecodeAttentionScratch, RMSNormFunction, SwiGLUFunction, decode_attention, rms_norm, rope_and_store,
        swiglu_split, top_p_threshold)
    from sf_train.fast.attention_one_launch import decode_attention_one_launch
    torch.manual_seed(0)

    # decode attention: prefix cache shared by k rows (left padding), per-row cache up to slot, GQA
    g, k, hkv, rep, D, P, T = 2, 3, 2, 4, 32, 40, 70
    B, H = g * k, hkv * rep
    q = torch.randn(B, H, D); kp, vp = torch.randn(g, hkv, P, D), torch.randn(g, hkv, P, D)
    kg, vg = torch.randn(B, hkv, T, D), torch.randn(B, hkv, T, D)
    start, slot = torch.tensor([5, 0], dtype=torch.int32), torch.tensor([37])
    ref = torch.empty(B, H, D, dtype=torch.float64)
    for b in range(B):
        for h in range(H):
            gi, j = b // k, h // rep
            keys = torch.cat([kp[gi, j, int(start[gi]):], kg[b, j, : int(slot) + 1]]).double()
            vals = torch.cat([vp[gi, j, int(start[gi]):], vg[b, j, : int(slot) + 1]]).double()
            ref[b, h] = torch.softmax(keys @ q[b, h].double() * D ** -0.5, 0) @ vals
    for one_launch in (False, True):
        sc = DecodeAttentionScratch(batch=B, heads=H, head_dim=D, prefix_len=P, gen_len=T,
                                    device=torch.device("cpu"), split_prefix=16, split_gen=32, block_n=16,
                                    one_launch=one_launch)
        attend = decode_attention_one_launch if one_launch else decode_attention
        for _ in range(2):  # the one-launch counters re-arm themselves: a second launch is right too
            out = torch.full((B, H, D), float("nan"))
            attend(q, kp, vp, start, kg, vg, slot, k=k, scale=D ** -0.5, scratch=sc, out=out)
            err = ((out.double() - ref).norm() / ref.norm()).item()
            assert err < 1e-5, (one_launch, err)
        assert not sc.count.any(), sc.count
    print("ok attention", err)

    # RMSNorm: forward and the gradient of x against transformers' module
    norm = LlamaRMSNorm(48, eps=1e-5)
    norm.weight.data = torch.randn(48)
    norm.weight.requires_grad_(False)
    x = torch.randn(7, 48)
    grad = torch.randn(7, 48)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    (norm(xa) * grad).sum().backward()
    y = RMSNormFunction.apply(xb, norm.weight, 1e-5)
    (y * grad).sum().backward()
    torch.testing.assert_close(y, norm(x), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(rms_norm(x, norm.weight, 1e-5), norm(x), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(xb.grad, xa.grad, rtol=1e-5, atol=1e-6)
    print("ok rmsnorm")

    # SwiGLU: silu(gate) * up and both gradients
    g, u, w = torch.randn(5, 33), torch.randn(5, 33), torch.randn(5, 33)
    ga, ua, gb, ub = (t.clone().requires_grad_() for t in (g, u, g, u))
    (torch.nn.functional.silu(ga) * ua * w).sum().backward()
    (SwiGLUFunction.apply(gb, ub) * w).sum().backward()
    torch.testing.assert_close(SwiGLUFunction.apply(g, u), torch.nn.functional.silu(g) * u)
    torch.testing.assert_close(gb.grad, ga.grad); torch.testing.assert_close(ub.grad, ua.grad)
    print("ok swiglu")

    # RoPE of q and k plus the cache write at slot
    B, H, Hkv, D, T = 3, 4, 2, 16, 10
    q, kk, vv = torch.randn(B, H * D), torch.randn(B, Hkv * D), torch.randn(B, Hkv * D)
    cos, sin = torch.randn(B, D), torch.randn(B, D)
    kg, vg = torch.zeros(B, Hkv, T, D), torch.zeros(B, Hkv, T, D)
    qo = rope_and_store(q, kk, vv, cos, sin, kg, vg, torch.tensor([4]), heads=H, kv_heads=Hkv, head_dim=D)
    qr, kr = apply_rotary_pos_emb(q.view(B, H, 1, D), kk.view(B, Hkv, 1, D), cos[:, None], sin[:, None])
    torch.testing.assert_close(qo, qr[:, :, 0]); torch.testing.assert_close(kg[:, :, 4], kr[:, :, 0])
    torch.testing.assert_close(vg[:, :, 4], vv.view(B, Hkv, D))
    assert kg[:, :, :4].abs().sum() == 0 and kg[:, :, 5:].abs().sum() == 0
    print("ok rope")

    # SwiGLU of a fused [gate | up] projection output, rows strided
    gu = torch.randn(5, 2 * 40)
    want = torch.nn.functional.silu(gu[:, :40]) * gu[:, 40:]
    torch.testing.assert_close(swiglu_split(gu), want)
    print("ok swiglu_split")

    # nucleus cut by bisection = the sort's cut (tie-free logits); tied tokens at the cut are all kept
    from sf_train.fast.sampling import sort_top_p_keep
    from sf_train.fast.sampling_kernels import sample_rows, top_p_cut
    for scale, top_p in ((1.0, 0.95), (8.0, 0.9), (0.01, 0.5), (30.0, 0.95)):
        logits = torch.randn(3, 3000) * scale
        keep = sort_top_p_keep(logits, top_p)
        assert torch.equal(logits >= top_p_threshold(logits, top_p)[:, None], keep)
        assert torch.equal(logits >= top_p_cut(logits, top_p)[:, None], keep)  # split over the vocabulary
    cold = sort_top_p_keep(logits / 0.5, 0.9)
    assert torch.equal(logits / 0.5 >= top_p_cut(logits, 0.9, 0.5)[:, None], cold)
    tied = torch.tensor([[2.0, 2.0, 2.0, 0.0, -1.0]])
    assert (tied >= top_p_threshold(tied, 0.5)[:, None]).tolist() == [[True, True, True, False, False]]
    assert (tied >= top_p_cut(tied, 0.5)[:, None]).tolist() == [[True, True, True, False, False]]
    print("ok top_p")

    # split sampler: only the nucleus (.4 .3 | .2 .1 at top_p .5), the race's odds (temperature 2:
    # p ∝ p^(1/2)), the same seed (and slot) gives the same draw
    probs = torch.tensor([0.1, 0.4, 0.2, 0.3])
    seed = torch.tensor([11])
    got = sample_rows(probs.log().repeat(60, 1), temperature=1.0, top_p=0.5, seed=seed)
    assert set(got.tolist()) == {1, 3}, got
    logits = probs.log().repeat(600, 1)
    got = sample_rows(logits, temperature=2.0, top_p=1.0, seed=seed)
    counts = torch.bincount(got, minlength=4) / 600
    assert (counts - probs.sqrt() / probs.sqrt().sum()).abs().max() < 0.06, counts
    assert torch.equal(got, sample_rows(logits, temperature=2.0, top_p=1.0, seed=seed))
    slot = torch.tensor([3])
    assert not torch.equal(got, sample_rows(logits, temperature=2.0, top_p=1.0, seed=seed, slot=slot))
    print("ok split sampler")

    # decode attention merged by the last program (gen splits of 32, or one of 128), poisoned scratch
    from sf_train.fast.kernels import add_rms_norm
    g, k, hkv, rep, D, P, T = 2, 3, 2, 4, 32, 40, 70
    B, H = g * k, hkv * rep
    q = torch.randn(B, H, D); kp, vp = torch.randn(g, hkv, P, D), torch.randn(g, hkv, P, D)
    kg, vg = torch.randn(B, hkv, T, D), torch.randn(B, hkv, T, D)
    start = torch.tensor([5, 0], dtype=torch.int32)
    for slot_v in (0, 37, 69):
        slot = torch.tensor([slot_v])
        ref = torch.empty(B, H, D, dtype=torch.float64)
        for b in range(B):
            for h in range(H):
                gi, j = b // k, h // rep
                keys = torch.cat([kp[gi, j, int(start[gi]):], kg[b, j, : slot_v + 1]]).double()
                vals = torch.cat([vp[gi, j, int(start[gi]):], vg[b, j, : slot_v + 1]]).double()
                ref[b, h] = torch.softmax(keys @ q[b, h].double() * D ** -0.5, 0) @ vals
        cases = ((True, 32, {}), (True, 128, dict(num_warps=8, num_stages=2)), (False, 32, {}),
                 (True, 32, dict(one_launch=True)), (True, 128, dict(one_launch=True)),
                 (True, 32, dict(one_launch=True, unroll_merge=True, block_prefix=32)))
        for fused, split_gen, launch in cases if slot_v == 37 else cases[:2] + cases[3:4] + cases[5:]:
            sc = DecodeAttentionScratch(batch=B, heads=H, head_dim=D, prefix_len=P, gen_len=T,
                                        device=torch.device("cpu"), split_prefix=16, split_gen=split_gen,
                                        block_n=16, fused_merge=fused, **launch)
            for t in (sc.m, sc.l, sc.acc):
                t.fill_(float("nan"))
            out = torch.full((B, H, D), float("nan"))
            attend = decode_attention_one_launch if sc.one_launch else decode_attention
            attend(q, kp, vp, start, kg, vg, slot, k=k, scale=D ** -0.5, scratch=sc, out=out)
            err = ((out.double() - ref).norm() / ref.norm()).item()
            assert err < 1e-5, (slot_v, fused, split_gen, launch, err)
    x, d, w = torch.randn(5, 48), torch.randn(5, 48), torch.randn(48)
    total, normed = add_rms_norm(x, d, w, 1e-5)
    assert torch.equal(total, x + d) and torch.equal(normed, rms_norm(x + d, w, 1e-5))
    print("ok fused merge, add_rms_norm")

    # the whole decoder with the Triton step equals the torch step (greedy), merged weights too
    from peft import LoraConfig, get_peft_model
    from sf_train.fast.decode import SharedPrefixDecoder
    from sf_train.testing import build_tiny_llama, build_tokenizer
    tok = build_tokenizer(["class Workflow: def __init__ graph review programmer"] * 10)
    model = build_tiny_llama(tok, seed=0)
    ids = [tok("class Workflow")["input_ids"], tok("graph review")["input_ids"]]
    model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules="all-linear"))
    for name, param in model.named_parameters():
        if "lora_B" in name:
            param.data.normal_(0, 0.3)
    outs = [SharedPrefixDecoder(model, pad_token_id=tok.pad_token_id, attention=a, merge_weights=m,
                                residual_norm=r, attention_options=o).generate(
                                    ids, 2, max_new_tokens=4, temperature=0.0, batch_size=4)
        for a, m, r, o in (("torch", False, False, None), ("triton", False, False, None),
                           ("triton", True, False, None), ("triton", True, True, None),
                           ("triton", True, True, {"one_launch": False}))]
    assert outs[0] == outs[1] == outs[2] == outs[3] == outs[4], outs
    dec = SharedPrefixDecoder(model, pad_token_id=tok.pad_token_id, attention="triton", top_p_kernel=True)
    sampled = [dec.generate(ids, 2, max_new_tokens=3, temperature=1.0, top_p=0.9, batch_size=4, seed=5)
               for _ in range(2)]
    assert sampled[0] == sampled[1] and dec.stats.sampler == "split", (sampled, dec.stats)
    print("ok decoder")
""")


def test_triton_kernels_match_their_references():
    """The Triton kernels on CPU through Triton's interpreter (the GPU run compiles the same code).

    Needs Triton (installed with CUDA builds of torch; ``pip install triton`` elsewhere).
    """
    pytest.importorskip("triton")
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    done = subprocess.run(
        [sys.executable, "-c", TRITON_SCRIPT], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("ok ") == 9, done.stdout
