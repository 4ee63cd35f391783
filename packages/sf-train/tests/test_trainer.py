"""ScoreDPOTrainer: equals TRL's DPO at (1, 0), weights each term as the formula says, trains only LoRA."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from datasets import Dataset
from peft import LoraConfig, get_peft_model
from trl import DPOConfig, DPOTrainer

from sf_train import ScoreDPOConfig, ScoreDPOTrainer, TrainError
from sf_train.testing import build_tiny_llama

BETA = 0.1
PROMPTS = ["Output a workflow: ", "Here is the graph without any problem information: "]
CHOSEN = ["<graph> custom review sc_ensemble </graph>", "<graph> programmer </graph>"]
REJECTED = ["<graph> test </graph>", "<graph> answer_generate custom custom review </graph>"]


def lora_config():
    return LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["q_proj", "v_proj"])


def perturb_lora(model, seed=1):
    """LoRA B starts at zero (policy == reference); set A and B so the log-ratios are not 0.

    Every trainer built this way then holds the same adapter.
    """
    gen = torch.Generator().manual_seed(seed)
    for name, param in sorted(model.named_parameters()):
        if "lora_A" in name or "lora_B" in name:
            param.data = torch.randn(param.shape, generator=gen) * 0.5


def rows(scores):
    return [
        dict(prompt=p, chosen=c, rejected=r, chosen_score=sw, rejected_score=sl)
        for p, c, r, (sw, sl) in zip(PROMPTS, CHOSEN, REJECTED, scores, strict=True)
    ]


def first_batch(trainer):
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(len(trainer.train_dataset))])
    return {k: v for k, v in batch.items()}


def make_score_trainer(tokenizer, train_kwargs, scores, **cfg):
    model = build_tiny_llama(tokenizer, seed=0)
    args = ScoreDPOConfig(beta=BETA, **train_kwargs, **cfg)
    trainer = ScoreDPOTrainer(
        model,
        args=args,
        train_dataset=Dataset.from_list(rows(scores)),
        processing_class=tokenizer,
        peft_config=lora_config(),
    )
    perturb_lora(trainer.model)
    return trainer


def test_equals_trl_dpo_loss_at_one_zero(tokenizer, train_kwargs):
    ours = make_score_trainer(tokenizer, train_kwargs, [(1.0, 0.0), (1.0, 0.0)])
    plain = [{k: v for k, v in r.items() if not k.endswith("_score")} for r in rows([(1, 0), (1, 0)])]
    trl_trainer = DPOTrainer(
        build_tiny_llama(tokenizer, seed=0),
        args=DPOConfig(beta=BETA, **train_kwargs),
        train_dataset=Dataset.from_list(plain),
        processing_class=tokenizer,
        peft_config=lora_config(),
    )
    perturb_lora(trl_trainer.model)

    loss_ours = ours.compute_loss(ours.model, first_batch(ours))
    loss_trl = trl_trainer.compute_loss(trl_trainer.model, first_batch(trl_trainer))
    assert abs(loss_trl.item() - 0.6931) > 1e-3  # the policy really differs from the reference
    torch.testing.assert_close(loss_ours, loss_trl, rtol=0, atol=1e-6)
    for key in ("rewards/chosen", "rewards/rejected", "logps/chosen", "logps/rejected"):
        assert ours._metrics["train"][key] == pytest.approx(trl_trainer._metrics["train"][key], abs=1e-5)


def sequence_logps(model, tokenizer, prompt, completion):
    """Sum of log p(completion tokens | prompt), computed independently of TRL."""
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    full_ids = tokenizer(prompt + completion + tokenizer.eos_token, add_special_tokens=False)["input_ids"]
    assert full_ids[: len(prompt_ids)] == prompt_ids
    ids = torch.tensor([full_ids])
    logits = model(input_ids=ids).logits[0, :-1].float()
    logp = F.log_softmax(logits, dim=-1).gather(1, ids[0, 1:, None])[:, 0]
    return logp[len(prompt_ids) - 1 :].sum()


@pytest.mark.parametrize("weight_fn,f", [("identity", lambda x: x), ("square", lambda x: x * x)])
def test_scores_weight_each_term_as_the_formula_says(tokenizer, train_kwargs, weight_fn, f):
    scores = [(0.8, 0.3), (0.5, 0.1)]
    trainer = make_score_trainer(tokenizer, train_kwargs, scores, weight_fn=weight_fn)
    loss = trainer.compute_loss(trainer.model, first_batch(trainer))

    model = trainer.model
    expected = []
    with torch.no_grad():
        for p, c, r, (sw, sl) in zip(PROMPTS, CHOSEN, REJECTED, scores, strict=True):
            pol_c, pol_r = sequence_logps(model, tokenizer, p, c), sequence_logps(model, tokenizer, p, r)
            with model.disable_adapter():
                ref_c, ref_r = sequence_logps(model, tokenizer, p, c), sequence_logps(model, tokenizer, p, r)
            margin = f(sw) * (pol_c - ref_c) - (1 - f(sl)) * (pol_r - ref_r)
            expected.append(-F.logsigmoid(BETA * margin))
    torch.testing.assert_close(loss.detach(), torch.stack(expected).mean(), rtol=1e-4, atol=1e-5)
    assert trainer._metrics["train"]["scores/chosen"] == [pytest.approx(0.65)]


def test_scores_change_the_loss_and_dpo_objective_ignores_them(tokenizer, train_kwargs):
    a = make_score_trainer(tokenizer, train_kwargs, [(0.9, 0.4), (0.6, 0.2)])
    b = make_score_trainer(tokenizer, train_kwargs, [(0.9, 0.4), (0.6, 0.2)], objective="dpo")
    c = make_score_trainer(tokenizer, train_kwargs, [(1.0, 0.0), (1.0, 0.0)])
    la = a.compute_loss(a.model, first_batch(a))
    lb = b.compute_loss(b.model, first_batch(b))
    lc = c.compute_loss(c.model, first_batch(c))
    torch.testing.assert_close(lb, lc, rtol=0, atol=1e-6)
    assert abs(la.item() - lb.item()) > 1e-4


def test_gradients_reach_only_lora_weights(tokenizer, train_kwargs):
    trainer = make_score_trainer(tokenizer, train_kwargs, [(0.7, 0.2), (1.0, 0.5)])
    loss = trainer.compute_loss(trainer.model, first_batch(trainer))
    loss.backward()
    lora, other = {}, {}
    for name, param in trainer.model.named_parameters():
        (lora if "lora_" in name else other)[name] = param
    assert lora and other
    assert all(p.grad is None and not p.requires_grad for p in other.values())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in lora.values())


def test_train_updates_the_adapter_only(tokenizer, train_kwargs):
    train_kwargs = {**train_kwargs, "learning_rate": 1e-2, "max_steps": 2}
    trainer = make_score_trainer(tokenizer, train_kwargs, [(0.7, 0.2), (1.0, 0.5)])
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer.train()
    changed = {n for n, p in trainer.model.named_parameters() if not torch.equal(p, before[n])}
    assert changed and all("lora_" in n for n in changed)
    logged = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert logged and "scores/chosen" in logged[0]


def test_reference_is_adapter_disabled_base_for_a_continued_adapter(tokenizer, train_kwargs):
    """Iteration >= 1 passes a PeftModel.

    TRL would copy its adapter as reference, the official run does not.
    """
    model = get_peft_model(build_tiny_llama(tokenizer, seed=0), lora_config())
    perturb_lora(model)
    data = Dataset.from_list(rows([(1.0, 0.0), (1.0, 0.0)]))
    base_ref = ScoreDPOTrainer(
        model, args=ScoreDPOConfig(beta=BETA, **train_kwargs), train_dataset=data, processing_class=tokenizer
    )
    assert list(base_ref.model.peft_config) == ["default"]
    assert base_ref.compute_loss(base_ref.model, first_batch(base_ref)).item() != pytest.approx(
        0.6931, abs=1e-4
    )

    model2 = get_peft_model(build_tiny_llama(tokenizer, seed=0), lora_config())
    perturb_lora(model2)
    prev_ref = ScoreDPOTrainer(
        model2,
        args=ScoreDPOConfig(beta=BETA, reference="previous", **train_kwargs),
        train_dataset=data,
        processing_class=tokenizer,
    )
    assert "ref" in prev_ref.model.peft_config
    # the reference equals the policy at the start, so every log-ratio is 0 and the loss is log 2
    assert prev_ref.compute_loss(prev_ref.model, first_batch(prev_ref)).item() == pytest.approx(
        0.693147, abs=1e-5
    )


def test_precomputed_reference_gives_the_same_loss(tokenizer, train_kwargs):
    scores = [(0.8, 0.3), (0.5, 0.1)]
    live = make_score_trainer(tokenizer, train_kwargs, scores)
    model = build_tiny_llama(tokenizer, seed=0)
    model = get_peft_model(model, lora_config())
    pre = ScoreDPOTrainer(
        model,
        args=ScoreDPOConfig(beta=BETA, precompute_ref_log_probs=True, **train_kwargs),
        train_dataset=Dataset.from_list(rows(scores)),
        processing_class=tokenizer,
    )
    # LoRA B = 0 during the precompute does not matter: the reference is the adapter-disabled base
    perturb_lora(pre.model)
    torch.testing.assert_close(
        pre.compute_loss(pre.model, first_batch(pre)),
        live.compute_loss(live.model, first_batch(live)),
        rtol=1e-5,
        atol=1e-6,
    )


def test_score_dpo_without_scores_is_a_clear_error(tokenizer, train_kwargs):
    plain = [{k: v for k, v in r.items() if not k.endswith("_score")} for r in rows([(1, 0), (1, 0)])]
    trainer = ScoreDPOTrainer(
        build_tiny_llama(tokenizer),
        args=ScoreDPOConfig(**train_kwargs),
        train_dataset=Dataset.from_list(plain),
        processing_class=tokenizer,
        peft_config=lora_config(),
    )
    with pytest.raises(TrainError, match="chosen_score"):
        trainer.compute_loss(trainer.model, first_batch(trainer))
