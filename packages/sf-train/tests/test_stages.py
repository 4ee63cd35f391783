"""Each stage of the loop on its own, from its input files (tiny random Llama, real trainers).

Tested: what it writes, the hand-off it returns, and that a finished stage is skipped. Scoring in the
real sandbox is covered by the loop tests.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sf_train.demo import demo_config, demo_problems, demo_prompt, demo_workflow
from sf_train.pairs import ScoredSample, build_pairs, sample_pairs
from sf_train.stages import Adapter, Pairs, ScoredWorkflows, StageContext

TASKS = range(3)
K = 4


def _completions(task: int) -> list[str]:
    texts = [demo_workflow(s) for s in ((), (0,), (0, 1), (0, 1, 2, 3))]
    if task == 2:
        texts[-1] = "no workflow here"
    return texts


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sf_train.testing import save_tiny_model

    texts = [
        demo_prompt(p) + c for t, p in zip(TASKS, demo_problems(TASKS), strict=True) for c in _completions(t)
    ]
    return save_tiny_model(tmp_path_factory.mktemp("stages") / "model", texts * 4)


def _ctx(tmp_path: Path, model: Path, **overrides: Any) -> StageContext:
    from sf_train.profiles import RunProfile

    settings: dict[str, Any] = dict(
        iterations=1,
        k=K,
        runs_per_workflow=1,
        num_pairs=8,
        eval_split=None,
        model_name_or_path=str(model),
        per_device_train_batch_size=2,
        lora_target_modules=["q_proj", "v_proj"],
        learning_rate=1e-2,
        max_new_tokens=12,
    )
    settings.update(overrides)
    config = demo_config(tmp_path, **settings)
    return StageContext(
        config=config,
        out=Path(config.output_dir),
        report=lambda line: None,
        profile=RunProfile(config, "hotpotqa"),
        dataset="hotpotqa",
        prompt_fn=demo_prompt,
    )


def _write_scores(stage: Path, scores: list[list[float]]) -> ScoredWorkflows:
    """A scoring stage's files, as the scoring stage writes them."""
    stage.mkdir(parents=True, exist_ok=True)
    rows = []
    for t, p in zip(TASKS, demo_problems(TASKS), strict=True):
        for i, (text, s) in enumerate(zip(_completions(t), scores[t], strict=True)):
            rows.append(
                ScoredSample(task_id=p.id, index=i, prompt=demo_prompt(p), completion=text, score=s).to_dict()
            )
    rows[1]["failure"] = "rejected: too_similar_to_template: 0.99"  # never paired
    (stage / "scores.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (stage / "score_cost.json").write_text(json.dumps({"executor_usd": 0.0}))
    return ScoredWorkflows.read(stage)


class Refuses:
    """A sampler, launcher or sandbox set that fails the test when a stage uses it."""

    def __call__(self, *args: Any) -> Any:
        raise AssertionError("a finished stage ran again")

    describe = prepare = open = train = __call__


def test_pairs_stage_from_a_scores_file(tmp_path: Path) -> None:
    from sf_train.stages.pairs import make_pairs

    ctx = _ctx(tmp_path, tmp_path)
    scored = _write_scores(ctx.out / "iter-0", [[0.0, 0.25, 0.5, 1.0]] * 3)
    pairs = make_pairs(ctx, scored, iteration=0)

    samples = [s for s in scored.samples() if not (s.failure or "").startswith("rejected: ")]
    expected = sample_pairs(build_pairs(samples), 8, gap_fn="cube", seed=ctx.config.effective_pair_seed)
    assert [json.loads(line) for line in pairs.path.read_text().splitlines()] == [
        p.to_dict() for p in expected
    ]
    assert pairs.n == 8 and pairs.stats["sampled_pairs"] == 8 and pairs.stats["samples"] == 12
    assert all(p.chosen_index != 1 and p.rejected_index != 1 for p in expected if p.task_id == "demo-0")
    assert Pairs.read(pairs.path.parent) == Pairs(
        path=pairs.path, n=8, stats=json.loads(json.dumps(pairs.stats))
    )


def test_training_stage_from_its_files_then_skipped(tmp_path: Path, model_dir: Path) -> None:
    from sf_train.policy import Policy
    from sf_train.runners.local import LocalTraining
    from sf_train.runners.processes import Processes
    from sf_train.stages.pairs import make_pairs
    from sf_train.stages.train import train

    ctx = _ctx(tmp_path, model_dir)
    stage = ctx.out / "iter-0"
    pairs = make_pairs(ctx, _write_scores(stage, [[0.0, 0.25, 0.5, 1.0]] * 3), iteration=0)
    policy = Policy(ctx.config, model=None, tokenizer=None, prompt_fn=demo_prompt)
    launcher = LocalTraining(ctx.config, policy, Processes())
    adapter = train(ctx, pairs, ScoredWorkflows.read(stage), iteration=0, previous=None, launcher=launcher)

    assert adapter.saved and (adapter.path / "adapter_config.json").exists()
    assert adapter.info["steps"] == 4 and adapter.info["objective"] == "score-dpo"
    assert json.loads((stage / "train.json").read_text()) == json.loads(json.dumps(adapter.info))
    again = train(ctx, pairs, ScoredWorkflows.read(stage), iteration=0, previous=None, launcher=Refuses())
    assert again == Adapter.read(stage)


def test_run_training_continues_a_saved_adapter_from_disk(tmp_path: Path, model_dir: Path) -> None:
    """The one training function, as the Ray Train worker calls it: everything from files."""
    import torch

    from sf_train.modeling import save_adapter
    from sf_train.stages.pairs import make_pairs
    from sf_train.training import run_training

    ctx = _ctx(tmp_path, model_dir, objective="sft-on-best", sft_examples=3)
    stage = ctx.out / "iter-0"
    scored = _write_scores(stage, [[0.0, 0.25, 0.5, 1.0]] * 3)
    pairs = make_pairs(ctx, scored, iteration=0)
    first = run_training(
        ctx.config, pairs_file=pairs.path, samples_file=scored.path, output_dir=tmp_path / "t1"
    )
    assert first.result is not None and first.result.steps == 2 and first.result.examples == 3
    save_adapter(first.model, tmp_path / "adapter")
    trained = {n: p.detach().clone() for n, p in first.model.named_parameters() if "lora_" in n}

    nothing = _write_scores(tmp_path / "zero", [[0.0] * K] * 3)  # no best sample: no training
    second = run_training(
        ctx.config,
        pairs_file=pairs.path,
        samples_file=nothing.path,
        output_dir=tmp_path / "t2",
        previous_adapter=tmp_path / "adapter",
    )
    assert second.result is None  # so the model is exactly what was rebuilt from disk
    loaded = {n: p for n, p in second.model.named_parameters() if "lora_" in n}
    assert set(loaded) == set(trained) and all(torch.equal(loaded[n], trained[n]) for n in trained)
    assert any(torch.count_nonzero(p) for n, p in trained.items() if "lora_B" in n)  # it had trained


def test_training_with_no_pairs_keeps_the_adapter(tmp_path: Path, model_dir: Path) -> None:
    from sf_train.stages.pairs import make_pairs
    from sf_train.training import run_training

    ctx = _ctx(tmp_path, model_dir)
    scored = _write_scores(ctx.out / "iter-0", [[0.5] * K] * 3)  # equal scores: no pair
    pairs = make_pairs(ctx, scored, iteration=0)
    assert pairs.n == 0 and pairs.path.read_text() == ""
    run = run_training(ctx.config, pairs_file=pairs.path, output_dir=tmp_path / "t")
    assert run.result is None and run.trainer is None


def test_generation_stage_writes_k_per_task_and_resumes(tmp_path: Path, model_dir: Path) -> None:
    from sf_train.policy import Policy
    from sf_train.stages.generate import generate

    ctx = _ctx(tmp_path, model_dir, generation_backend="hf", generation_batch_size=8)
    policy = Policy(ctx.config, model=None, tokenizer=None, prompt_fn=demo_prompt)
    stage = ctx.out / "iter-0"
    stage.mkdir(parents=True)
    problems = demo_problems(TASKS)
    generated = generate(ctx, stage, problems, k=K, adapter=None, seed=0, sampler=policy.generator_for)

    rows = generated.rows()
    assert list(rows) == [p.id for p in problems]
    assert all(
        len(r["completions"]) == K and r["prompt"] == demo_prompt(p)
        for r, p in zip(rows.values(), problems, strict=True)
    )
    assert generated.cost["generator_tokens"] > 0
    again = generate(ctx, stage, problems, k=K, adapter=None, seed=0, sampler=Refuses())
    assert again.rows() == rows and again.cost == {"generator_seconds": 0.0, "generator_tokens": 0.0}
