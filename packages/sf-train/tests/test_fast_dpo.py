"""FastScoreDPOTrainer: the same loss and gradients as TRL's DPO at (1, 0), Score-DPO's formula otherwise."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from datasets import Dataset
from peft import LoraConfig, get_peft_model
from trl import DPOConfig, DPOTrainer

from sf_train import ScoreDPOConfig, TrainConfigError
from sf_train.fast import FastScoreDPOTrainer, pack_pairs
from sf_train.testing import build_tiny_llama

BETA = 0.1
PROMPTS = ["Output a workflow: ", "Here is the graph without any problem information: ", "class Workflow:"]
# the second pair's completions share a leading "<graph> programmer" beyond the prompt
CHOSEN = [
    "<graph> custom review sc_ensemble </graph>",
    "<graph> programmer review </graph>",
    "\n    def __init__(self): pass",
]
REJECTED = [
    "<graph> test </graph>",
    "<graph> programmer test custom custom review </graph>",
    "\n    async def run_workflow(self):\n        return solution",
]


def lora_config():
    return LoraConfig(
        r=4,
        lora_alpha=8,
        lora_dropout=0.0,
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    )


def perturb_lora(model, seed=1):
    gen = torch.Generator().manual_seed(seed)
    for name, param in sorted(model.named_parameters()):
        if "lora_A" in name or "lora_B" in name:
            param.data = torch.randn(param.shape, generator=gen) * 0.3


def rows(scores):
    return [
        dict(prompt=p, chosen=c, rejected=r, chosen_score=sw, rejected_score=sl)
        for p, c, r, (sw, sl) in zip(PROMPTS, CHOSEN, REJECTED, scores, strict=True)
    ]


def full_batch(trainer):
    return trainer.data_collator([trainer.train_dataset[i] for i in range(len(trainer.train_dataset))])


LAYOUTS = {
    "rows": {},
    "varlen": {"varlen_attention": True},  # on CPU: the flat layout with the reference varlen kernel
    "recompute-mlp": {"recompute_mlp": True},
    "varlen+recompute-mlp": {"varlen_attention": True, "recompute_mlp": True},
    "peft-lora-forward": {"fused_lora": False},  # every layout above runs the fused LoRA projections
}


def make_fast(tokenizer, train_kwargs, scores, layout=None, **cfg):
    args = ScoreDPOConfig(beta=BETA, **{**train_kwargs, "per_device_train_batch_size": 3}, **cfg)
    model = get_peft_model(build_tiny_llama(tokenizer, seed=0), lora_config())
    perturb_lora(model)  # before construction: the reference pass must ignore the adapter
    return FastScoreDPOTrainer(
        model,
        args=args,
        train_dataset=Dataset.from_list(rows(scores)),
        processing_class=tokenizer,
        **LAYOUTS[layout or "rows"],
    )


def make_trl(tokenizer, train_kwargs, **cfg):
    plain = [{k: v for k, v in r.items() if not k.endswith("_score")} for r in rows([(1, 0)] * 3)]
    trainer = DPOTrainer(
        build_tiny_llama(tokenizer, seed=0),
        args=DPOConfig(beta=BETA, **{**train_kwargs, "per_device_train_batch_size": 3}, **cfg),
        train_dataset=Dataset.from_list(plain),
        processing_class=tokenizer,
        peft_config=lora_config(),
    )
    perturb_lora(trainer.model)
    return trainer


def lora_grads(model):
    return {n.replace(".default", ""): p.grad.clone() for n, p in model.named_parameters() if "lora_" in n}


def _node_names(tensor):
    seen, todo, names = set(), [tensor.grad_fn], set()
    while todo:
        node = todo.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        names.add(type(node).__name__)
        todo.extend(next_fn for next_fn, _ in node.next_functions)
    return names


def test_packing_shares_the_prompt_and_common_completion_prefix(tokenizer, train_kwargs):
    trainer = make_fast(tokenizer, train_kwargs, [(1.0, 0.0)] * 3)
    batch = full_batch(trainer)
    labels = batch["input_ids"].masked_fill(batch["completion_mask"] == 0, -100)
    packed = pack_pairs(batch["input_ids"], batch["attention_mask"], labels)
    lens = batch["attention_mask"].sum(1)
    prompt_lens = [len(trainer.train_dataset[i]["prompt_ids"]) for i in range(3)]
    assert packed.shared[0] >= prompt_lens[0]
    assert packed.shared[1] > prompt_lens[1] + 1  # "<graph> programmer" is shared too
    assert packed.tokens == int(lens.sum()) - sum(packed.shared)
    assert packed.input_ids.shape[1] % 16 == 0 and packed.input_ids.shape[1] >= max(
        int(lens[i] + lens[3 + i]) - packed.shared[i] for i in range(3)
    )
    assert packed.targets.numel() == int(batch["completion_mask"].sum())
    mask = packed.attention_mask()[:, 0]
    assert bool(mask.diagonal(dim1=1, dim2=2).all())  # every row, padding too, attends to itself
    # a rejected-suffix token sees the shared prefix but no token of the chosen completion
    i, lc, s = 0, int(lens[0]), packed.shared[0]
    assert bool(mask[i, lc, :s].all()) and not bool(mask[i, lc, s:lc].any()) and bool(mask[i, lc, lc])


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_loss_and_lora_gradients_equal_trl_dpo_at_one_zero(tokenizer, train_kwargs, layout):
    fast = make_fast(tokenizer, train_kwargs, [(1.0, 0.0)] * 3, layout)
    trl_trainer = make_trl(tokenizer, train_kwargs)

    loss_fast = fast.compute_loss(fast.model, full_batch(fast))
    loss_trl = trl_trainer.compute_loss(trl_trainer.model, full_batch(trl_trainer))
    assert abs(loss_trl.item() - 0.6931) > 1e-3  # the policy really differs from the reference
    torch.testing.assert_close(loss_fast, loss_trl, rtol=0, atol=2e-6)
    for key in (
        "rewards/chosen",
        "rewards/rejected",
        "logps/chosen",
        "logps/rejected",
        "entropy",
        "logits/chosen",
        "mean_token_accuracy",
    ):
        assert fast._metrics["train"][key] == pytest.approx(trl_trainer._metrics["train"][key], abs=2e-5), key

    fused_nodes = _node_names(loss_fast) & {"LoRALinearFunctionBackward"}
    assert bool(fused_nodes) == (layout != "peft-lora-forward")
    loss_fast.backward()
    loss_trl.backward()
    g_fast, g_trl = lora_grads(fast.model), lora_grads(trl_trainer.model)
    assert g_fast.keys() == g_trl.keys() and len(g_fast) == 2 * 7 * 2
    for name, grad in g_trl.items():
        assert grad.abs().sum() > 0
        torch.testing.assert_close(g_fast[name], grad, rtol=1e-4, atol=1e-6, msg=name)


def test_trl_options_that_read_per_token_fields_match_too(tokenizer, train_kwargs):
    """WPO weighting (log Σp² per token) and LD-DPO's length split read the same layout."""
    options = dict(use_weighting=True, ld_alpha=0.5)
    fast = make_fast(tokenizer, train_kwargs, [(1.0, 0.0)] * 3, **options)
    trl_trainer = make_trl(tokenizer, train_kwargs, **options)
    with torch.no_grad():
        loss_fast = fast.compute_loss(fast.model, full_batch(fast))
        loss_trl = trl_trainer.compute_loss(trl_trainer.model, full_batch(trl_trainer))
    torch.testing.assert_close(loss_fast, loss_trl, rtol=0, atol=2e-6)


def sequence_logps(model, tokenizer, prompt, completion):
    """Sum of log p(completion + EOS | prompt) with one plain causal forward."""
    prompt_ids = tokenizer(prompt)["input_ids"]
    full_ids = tokenizer(prompt + completion + tokenizer.eos_token)["input_ids"]
    ids = torch.tensor([full_ids])
    logp = F.log_softmax(model(input_ids=ids).logits[0, :-1].float(), dim=-1).gather(1, ids[0, 1:, None])[
        :, 0
    ]
    return logp[len(prompt_ids) - 1 :].sum()


@pytest.mark.parametrize(
    "weight_fn,f,layout",
    [("identity", lambda x: x, "rows"), ("square", lambda x: x * x, "varlen+recompute-mlp")],
)
def test_loss_is_the_score_dpo_formula(tokenizer, train_kwargs, weight_fn, f, layout):
    scores = [(0.8, 0.3), (0.5, 0.1), (1.0, 0.6)]
    trainer = make_fast(tokenizer, train_kwargs, scores, layout, weight_fn=weight_fn)
    loss = trainer.compute_loss(trainer.model, full_batch(trainer))
    model = trainer.model
    expected = []
    with torch.no_grad():
        for i, (p, c, r, (sw, sl)) in enumerate(zip(PROMPTS, CHOSEN, REJECTED, scores, strict=True)):
            pol_c, pol_r = sequence_logps(model, tokenizer, p, c), sequence_logps(model, tokenizer, p, r)
            with model.disable_adapter():
                ref_c, ref_r = sequence_logps(model, tokenizer, p, c), sequence_logps(model, tokenizer, p, r)
            # the precomputed reference columns are the adapter-disabled sums
            assert trainer.train_dataset[i]["ref_chosen_logps"] == pytest.approx(ref_c.item(), abs=1e-4)
            assert trainer.train_dataset[i]["ref_rejected_logps"] == pytest.approx(ref_r.item(), abs=1e-4)
            margin = f(sw) * (pol_c - ref_c) - (1 - f(sl)) * (pol_r - ref_r)
            expected.append(-F.logsigmoid(BETA * margin))
    torch.testing.assert_close(loss.detach(), torch.stack(expected).mean(), rtol=1e-4, atol=1e-5)
    assert trainer.ref_pairs == 3 and trainer.ref_seconds > 0


def test_train_with_accumulation_updates_only_the_adapter(tokenizer, train_kwargs):
    kwargs = {
        **train_kwargs,
        "learning_rate": 1e-2,
        "max_steps": 2,
        "gradient_accumulation_steps": 2,
        "per_device_train_batch_size": 1,
    }
    args = ScoreDPOConfig(beta=BETA, precompute_ref_batch_size=2, **kwargs)
    model = get_peft_model(build_tiny_llama(tokenizer, seed=0), lora_config())
    trainer = FastScoreDPOTrainer(
        model, args=args, train_dataset=Dataset.from_list(rows([(0.7, 0.2)] * 3)), processing_class=tokenizer
    )
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer.train()
    changed = {n for n, p in trainer.model.named_parameters() if not torch.equal(p, before[n])}
    assert changed and all("lora_" in n for n in changed)
    assert not args.precompute_ref_log_probs or args is not trainer.args  # the caller's args are not mutated
    logged = [e for e in trainer.state.log_history if "loss" in e]
    assert logged and "scores/chosen" in logged[0] and "rewards/margins" in logged[0]


def saved_widths(trainer, batch):
    """Last dimensions of the tensors autograd keeps for backward in one forward (weights excluded)."""
    weights = {p.untyped_storage().data_ptr() for p in trainer.model.parameters()}
    seen, widths = set(weights), []

    def pack(t):
        key = t.untyped_storage().data_ptr()
        if key not in seen:
            seen.add(key)
            widths.append(t.shape[-1] if t.dim() else 0)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        trainer.compute_loss(trainer.model, batch)
    return widths


def test_recomputing_mlp_keeps_no_swiglu_output_for_backward(tokenizer, train_kwargs):
    plain = make_fast(tokenizer, train_kwargs, [(1.0, 0.0)] * 3)
    recompute = make_fast(tokenizer, train_kwargs, [(1.0, 0.0)] * 3, "recompute-mlp")
    inter = plain.model.config.intermediate_size
    layers = plain.model.config.num_hidden_layers
    kept_plain = saved_widths(plain, full_batch(plain)).count(inter)
    kept_recompute = saved_widths(recompute, full_batch(recompute)).count(inter)
    assert kept_recompute == 2 * layers  # gate and up outputs only
    assert kept_plain > kept_recompute


def test_varlen_layout_is_padding_free_and_segments_match_the_rows(tokenizer, train_kwargs):
    from sf_train.fast.packing import varlen_layout

    trainer = make_fast(tokenizer, train_kwargs, [(1.0, 0.0)] * 3)
    batch = full_batch(trainer)
    labels = batch["input_ids"].masked_fill(batch["completion_mask"] == 0, -100)
    packed = pack_pairs(batch["input_ids"], batch["attention_mask"], labels)
    flat = varlen_layout(packed)
    assert flat.input_ids.shape == (1, packed.tokens)
    q_lens = flat.cu_seq_q.diff().tolist()
    k_lens = flat.cu_seq_k.diff().tolist()
    assert sum(q_lens) == packed.tokens and len(flat.kv_index) == sum(k_lens)
    for i, (lc, s, n) in enumerate(packed.segments):
        assert q_lens[2 * i] == k_lens[2 * i] == lc  # chosen: itself, causally
        assert q_lens[2 * i + 1] == n - lc and k_lens[2 * i + 1] == s + n - lc  # rejected: prefix + itself
    # every selected hidden state is the same token as in the padded rows
    assert torch.equal(flat.input_ids[0, flat.src], packed.input_ids[packed.src_row, packed.src_pos])


def test_refuses_what_it_cannot_run(tokenizer, train_kwargs):
    args = ScoreDPOConfig(beta=BETA, **train_kwargs)
    data = Dataset.from_list(rows([(1.0, 0.0)] * 3))
    with pytest.raises(TrainConfigError, match="LoRA"):
        FastScoreDPOTrainer(
            build_tiny_llama(tokenizer), args=args, train_dataset=data, processing_class=tokenizer
        )
    with pytest.raises(TrainConfigError, match="ref_model"):
        FastScoreDPOTrainer(
            build_tiny_llama(tokenizer),
            ref_model=build_tiny_llama(tokenizer),
            args=args,
            train_dataset=data,
            processing_class=tokenizer,
            peft_config=lora_config(),
        )


def test_bf16_autocast_path_matches_the_model_with_peft_casting(tokenizer):
    """Under autocast LoRA inputs stay bf16 (no float32 copies); log-probs are those of the plain model."""
    from sf_train.fast import SharedPrefixForward

    model = build_tiny_llama(tokenizer, seed=0).to(torch.bfloat16)
    model = get_peft_model(model, lora_config())  # adapters are upcast to float32 by PEFT
    perturb_lora(model)
    assert next(p for n, p in model.named_parameters() if "lora_A" in n).dtype == torch.float32
    enc = [
        tokenizer(PROMPTS[i % 3] + (CHOSEN + REJECTED)[i] + tokenizer.eos_token)["input_ids"]
        for i in range(6)
    ]
    width = max(map(len, enc))
    ids = torch.tensor([e + [0] * (width - len(e)) for e in enc])
    mask = torch.tensor([[1] * len(e) + [0] * (width - len(e)) for e in enc])
    labels = ids.masked_fill(mask == 0, -100)
    for i in range(6):
        labels[i, : len(tokenizer(PROMPTS[i % 3])["input_ids"])] = -100
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fast = SharedPrefixForward(model)(ids, mask, labels=labels, fused_lm_head=True).log_probs.float()
        logits = model(input_ids=ids, attention_mask=mask).logits.float()
    plain = torch.log_softmax(logits[:, :-1], -1).gather(2, ids[:, 1:, None])[..., 0] * (
        labels[:, 1:] != -100
    )
    assert all(getattr(m, "cast_input_dtype_enabled", True) for m in model.modules())  # restored
    torch.testing.assert_close(fast.sum(1), plain.sum(1), rtol=2e-2, atol=0.5)
