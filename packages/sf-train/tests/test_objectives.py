"""Every objective trains the LoRA adapter towards the better-scored workflows."""

from __future__ import annotations

import pytest
import torch
from peft import LoraConfig, get_peft_model

from sf_train import ScoreDPOConfig, ScoredSample, build_pairs, sample_pairs
from sf_train.objectives import best_samples, train_objective
from sf_train.testing import build_tiny_llama

COMPLETIONS = [
    "<graph> custom review </graph>",
    "<graph> programmer </graph>",
    "<graph> test test </graph>",
    "<graph> sc_ensemble </graph>",
]


def make_samples():
    scores = [1.0, 0.6, 0.3, 0.0]
    return [
        ScoredSample(
            task_id=f"t{t}",
            index=i,
            prompt=f"Output a workflow for task {t}: ",
            completion=COMPLETIONS[i],
            score=scores[i],
            failure=None if scores[i] else "crash",
        )
        for t in range(2)
        for i in range(4)
    ]


def logp(model, tokenizer, prompt, completion):
    ids = tokenizer(prompt + completion, return_tensors="pt")["input_ids"]
    n_prompt = len(tokenizer(prompt)["input_ids"])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0, :-1]
    lp = torch.log_softmax(logits.float(), -1).gather(1, ids[0, 1:, None])[:, 0]
    return lp[n_prompt - 1 :].sum().item()


def test_best_samples_picks_the_top_positive_score():
    samples = make_samples() + [ScoredSample(task_id="z", index=0, prompt="p", completion="c", score=0.0)]
    assert [(s.task_id, s.index) for s in best_samples(samples)] == [("t0", 0), ("t1", 0)]


@pytest.mark.parametrize(
    "objective,fast_trainer",
    [("score-dpo", "auto"), ("score-dpo", "on"), ("dpo", "auto"), ("sft-on-best", "auto"), ("ppo", "auto")],
)
def test_objective_moves_probability_towards_the_best_workflow(
    objective, fast_trainer, tokenizer, train_kwargs, tmp_path
):
    samples = make_samples()
    pairs = sample_pairs(build_pairs(samples), 8, seed=0)
    model = get_peft_model(
        build_tiny_llama(tokenizer, seed=0),
        LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=["q_proj", "v_proj"]),
    )
    kwargs = {**train_kwargs, "per_device_train_batch_size": 1, "learning_rate": 5e-3}
    config = ScoreDPOConfig(
        objective=objective, num_pairs=8, k=4, temperature=1.0, beta=0.5, fast_trainer=fast_trainer, **kwargs
    )
    prompt = samples[0].prompt
    margin_before = logp(model, tokenizer, prompt, COMPLETIONS[0]) - logp(
        model, tokenizer, prompt, COMPLETIONS[3]
    )
    base = {n: p.detach().clone() for n, p in model.named_parameters() if "lora_" not in n}

    result = train_objective(
        model, tokenizer, config, samples=samples, pairs=pairs, output_dir=tmp_path / "t"
    )

    assert result is not None and result.objective == objective
    if objective in ("score-dpo", "dpo"):  # auto: the plain trainer on a CPU; on: the fast one
        assert result.trainer == ("FastScoreDPOTrainer" if fast_trainer == "on" else "ScoreDPOTrainer")
    expected_steps = {"score-dpo": 8, "dpo": 8, "sft-on-best": 8, "ppo": 2}[objective]
    assert result.steps == expected_steps and result.seconds > 0
    margin_after = logp(model, tokenizer, prompt, COMPLETIONS[0]) - logp(
        model, tokenizer, prompt, COMPLETIONS[3]
    )
    assert margin_after > margin_before + 0.05, (margin_before, margin_after)
    assert all(torch.equal(p, base[n]) for n, p in model.named_parameters() if n in base)


def test_nothing_to_train_on_returns_none(tokenizer, train_kwargs, tmp_path):
    equal = [
        ScoredSample(task_id="t", index=i, prompt="p", completion=c, score=0.0)
        for i, c in enumerate(COMPLETIONS)
    ]
    model = get_peft_model(build_tiny_llama(tokenizer), LoraConfig(r=4, target_modules=["q_proj"]))
    for objective in ("score-dpo", "sft-on-best", "ppo"):
        config = ScoreDPOConfig(objective=objective, k=4, **train_kwargs)
        assert train_objective(model, tokenizer, config, samples=equal, pairs=[], output_dir=tmp_path) is None
