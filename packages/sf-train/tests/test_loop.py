"""The loop for real (sandbox, sf-bench scoring, training): resumable, and it learns."""

from __future__ import annotations

import json
import shutil

import pytest

from sf_train import TrainConfigError
from sf_train.demo import demo_config, demo_problems, demo_prompt, make_executor, run_demo
from sf_train.loop import run_loop

pytestmark = [pytest.mark.docker]


class Killed(Exception):
    pass


def small_config(out, warmup, **kw):
    cfg = dict(
        k=4,
        runs_per_workflow=1,
        num_pairs=8,
        eval_k=2,
        eval_each_iteration=False,
        iterations=2,
        model_name_or_path=str(warmup),
        max_new_tokens=24,
    )
    cfg.update(kw)
    return demo_config(out, **cfg)


def run(config, executor, reporter=None):
    return run_loop(
        config,
        train_problems=demo_problems(range(4)),
        eval_problems=demo_problems([1000, 1001]),
        executor=executor,
        prompt_fn=demo_prompt,
        dataset_name="hotpotqa",
        reporter=reporter or (lambda line: None),
    )


def test_loop_resumes_after_a_kill_at_every_stage(tmp_path, demo_warmup, require_docker):
    config = small_config(tmp_path, demo_warmup)
    out = tmp_path / "run"

    def kill_before_training_iteration_1(line):
        if line.startswith("iter-1: training"):
            raise Killed(line)

    first = make_executor()
    with pytest.raises(Killed):
        run(config, first, kill_before_training_iteration_1)
    assert (out / "iter-0" / "adapter" / "adapter_config.json").exists()
    assert (out / "iter-0" / "metrics.json").exists()
    assert (out / "iter-1" / "pairs.jsonl").exists() and not (out / "iter-1" / "adapter").exists()
    samples_0 = (out / "iter-0" / "samples.jsonl").read_text()
    assert (
        len(first.requests) == 2 * 4 * 4
    )  # two iterations of 4 tasks x k=4 workflows x 1 run, one call each

    # a kill in the middle of scoring: half of iteration 1's records and its scores are lost
    records = out / "iter-1" / "bench" / "hotpotqa.jsonl"
    lines = records.read_text().splitlines(keepends=True)
    records.write_text("".join(lines[:8]) + lines[8][:20])  # 8 records kept, a torn 9th line
    (out / "iter-1" / "scores.jsonl").unlink()
    shutil.rmtree(out / "iter-1" / "trainer", ignore_errors=True)

    second = make_executor()
    result = run(config, second)
    # iteration 0 is not redone; iteration 1 reruns only its 8 lost workflows; then 2 tasks x eval_k=2
    assert len(second.requests) == 8 + 2 * 2
    assert (out / "iter-0" / "samples.jsonl").read_text() == samples_0
    assert [m["iteration"] for m in result.iterations] == [0, 1]
    assert (out / "iter-1" / "adapter" / "adapter_config.json").exists()
    assert result.eval is not None and result.eval["samples"] == 4
    summary = json.loads((out / "summary.json").read_text())
    assert summary["cost"]["trainer_device_seconds"] > 0
    assert [json.loads(line)["iteration"] for line in (out / "metrics.jsonl").read_text().splitlines()] == [
        0,
        1,
    ]
    for m in result.iterations:
        assert m["samples"] == 16 and 0.0 <= m["mean_score"] <= 1.0
        assert set(m["cost"]) >= {
            "executor_usd",
            "executor_input_tokens",
            "generator_device_seconds",
            "trainer_device_seconds",
        }

    third = make_executor()
    again = run(config, third)  # everything done: nothing is regenerated, rerun or retrained
    assert len(third.requests) == 0
    assert [m["mean_score"] for m in again.iterations] == [m["mean_score"] for m in result.iterations]

    with pytest.raises(TrainConfigError, match="num_pairs"):
        run(small_config(tmp_path, demo_warmup, num_pairs=9), make_executor())


def test_generation_resumes_with_the_tasks_left(tmp_path, demo_warmup, require_docker):
    config = small_config(tmp_path, demo_warmup, iterations=1)
    out = tmp_path / "run"

    def kill_at_scoring(line):
        if "running and scoring" in line:
            raise Killed(line)

    with pytest.raises(Killed):
        run(config, make_executor(), kill_at_scoring)
    samples = out / "iter-0" / "samples.jsonl"
    rows = samples.read_text().splitlines(keepends=True)
    assert len(rows) == 4
    samples.write_text("".join(rows[:2]) + rows[2][:30])  # killed while writing the third task
    lines = []
    run(config, make_executor(), lines.append)
    assert any("generating 4 workflows for 2 tasks (2 already done)" in line for line in lines)
    done = [
        json.loads(line)
        for line in samples.read_text().splitlines()
        if line.startswith("{") and line.endswith("}")
    ]
    assert sorted(r["task_id"] for r in done) == sorted(f"demo-{i}" for i in range(4))


@pytest.mark.slow
@pytest.mark.timeout(900)  # about 1 minute alone; give shared, busy CI cores room
def test_proof_that_it_learns(tmp_path, require_docker):
    """Tiny Llama + SFT warm-up + the real loop: sampled scores rise, on held-out tasks too."""
    result = run_demo(tmp_path, reporter=lambda line: None)
    train = [m["mean_score"] for m in result.iterations]
    heldout = [h["mean_score"] for h in result.heldout]
    assert len(train) == 3 and len(heldout) == 4
    assert all(m["failed_samples"] == 0 for m in result.iterations[:1])
    assert train[-1] >= train[0] + 0.1, train
    assert heldout[-1] >= heldout[0] + 0.2, heldout
    assert result.eval["mean_score"] >= heldout[0] + 0.2
    assert (tmp_path / "run" / "report.png").stat().st_size > 10_000
