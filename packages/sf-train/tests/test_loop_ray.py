"""The loop on a real 2-node Ray cluster (one dockerd per node, everything on 127.0.0.1).

One module fixture runs the same one-iteration loop twice from the same generated workflows
(written as the iteration's samples, so generation is skipped and both runs score exactly the
same programs): locally (this machine's sandbox pool, training in this process) and on the
cluster (``ray_address``: the workflows run in the nodes' sandbox pools, each node answering
operator calls with its own copy of the scripted executor; ``train_launcher: ray``: Ray Train's
TorchTrainer with 2 CPU workers, gloo, on a tiny random Llama). The tests then compare files and
check what the training workers recorded.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from sf_train import MissingDependencyError, TrainConfigError

pytestmark = [pytest.mark.docker]

TASKS = range(3)
K = 4
VOLATILE = {"latency", "finished_at", "duration"}


def _completions(task: int) -> list[str]:
    """Four workflows of known, different scores per task; task 2's last one does not parse."""
    from sf_train.demo import demo_workflow

    texts = [demo_workflow(s) for s in ((), (0,), (0, 1), (0, 1, 2, 3))]
    if task == 2:
        texts[-1] = "no workflow here"
    return texts


def _config(base: Path, model: Path, **overrides: Any) -> Any:
    from sf_train.demo import demo_config

    settings: dict[str, Any] = dict(
        iterations=1,
        k=K,
        runs_per_workflow=1,
        num_pairs=8,
        eval_split=None,
        eval_each_iteration=False,
        model_name_or_path=str(model),
        per_device_train_batch_size=2,
        lora_target_modules=["q_proj", "v_proj"],
        learning_rate=1e-2,
    )
    settings.update(overrides)
    return demo_config(base, **settings)


def _run(config: Any, lines: list[str] | None = None) -> Any:
    from sf_train.demo import demo_problems, demo_prompt, make_executor
    from sf_train.loop import run_loop

    return run_loop(
        config,
        train_problems=demo_problems(TASKS),
        executor=make_executor(),
        prompt_fn=demo_prompt,
        dataset_name="hotpotqa",
        reporter=(lines.append if lines is not None else lambda line: None),
    )


def _seed_samples(out: Path) -> None:
    """The iteration's samples, as generation would have written them (it is then skipped)."""
    from sf_train.demo import demo_problems, demo_prompt

    stage = out / "iter-0"
    stage.mkdir(parents=True)
    rows = [
        {"task_id": p.id, "prompt": demo_prompt(p), "completions": _completions(t)}
        for t, p in zip(TASKS, demo_problems(TASKS), strict=True)
    ]
    (stage / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def _records(path: Path) -> list[dict[str, Any]]:
    rows = [_strip(json.loads(line)) for line in path.read_text().splitlines() if line.strip()]
    return sorted(rows, key=lambda r: (r["problem_id"], r["sample"]))  # file order is finishing order


def _jobs_per_node(lines: list[str]) -> list[int]:
    """Jobs per node from the pool report the loop prints when it closes the pool."""
    (summary,) = [line for line in lines if re.match(r"ray: \d+ node\(s\), \d+ job\(s\)", line)]
    return [int(n) for n in re.findall(r"\) (\d+)", summary)]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, ray_cluster: Any) -> dict[str, Any]:
    from sf_train.demo import demo_problems, demo_prompt
    from sf_train.testing import save_tiny_model

    root = tmp_path_factory.mktemp("loop-ray")
    texts = [
        demo_prompt(p) + c for t, p in zip(TASKS, demo_problems(TASKS), strict=True) for c in _completions(t)
    ]
    model = save_tiny_model(root / "model", texts * 4)
    local = _config(root / "local", model)
    ray = _config(
        root / "ray",
        model,
        ray_address=ray_cluster.address,
        ray_pool_size=2,
        train_launcher="ray",
        ray_train_workers=2,
    )
    for config in (local, ray):
        _seed_samples(Path(config.output_dir))
    lines: list[str] = []
    return {
        "model": model,
        "local": (Path(local.output_dir), _run(local)),
        "ray": (Path(ray.output_dir), _run(ray, lines)),
        "ray_config": ray,
        "lines": lines,
        "cluster": ray_cluster,
    }


def test_scoring_on_the_ray_nodes_equals_the_local_run_and_resumes(runs: dict[str, Any]) -> None:
    (local, local_result), (ray, ray_result) = runs["local"], runs["ray"]
    stage_l, stage_r = local / "iter-0", ray / "iter-0"
    assert (stage_r / "scores.jsonl").read_text() == (stage_l / "scores.jsonl").read_text()
    scores = [json.loads(line)["score"] for line in (stage_r / "scores.jsonl").read_text().splitlines()]
    assert scores == [0.0, 0.25, 0.5, 1.0] * 2 + [0.0, 0.25, 0.5, 0.0]  # the known scores
    assert (stage_r / "pairs.jsonl").read_text() == (stage_l / "pairs.jsonl").read_text()
    assert _records(stage_r / "bench" / "hotpotqa.jsonl") == _records(stage_l / "bench" / "hotpotqa.jsonl")
    cost_l = json.loads((stage_l / "score_cost.json").read_text())
    cost_r = json.loads((stage_r / "score_cost.json").read_text())
    assert cost_r["executor_input_tokens"] == cost_l["executor_input_tokens"] > 0  # accounting came back
    assert ray_result.iterations[0]["mean_score"] == local_result.iterations[0]["mean_score"]

    # both nodes ran workflows: the pool's report line lists the jobs of each node (every
    # workflow but the one that does not parse, which never reaches a sandbox)
    per_node = _jobs_per_node(runs["lines"])
    assert len(per_node) == 2 and all(n > 0 for n in per_node) and sum(per_node) == 3 * K - 1
    assert any(line.startswith("ray: workflows run on 2 node(s)") for line in runs["lines"])

    # resume through Ray after a kill in the middle of scoring: only the lost records are redone
    records = stage_r / "bench" / "hotpotqa.jsonl"
    lines = records.read_text().splitlines(keepends=True)
    records.write_text("".join(lines[:5]) + lines[5][:20])
    kept = {(r["problem_id"], r["sample"]) for r in map(json.loads, lines[:5])}
    lost = {(f"demo-{t}", s) for t in TASKS for s in range(K)} - kept - {("demo-2", K - 1)}
    for name in ("scores.jsonl", "score_cost.json", "metrics.json"):
        (stage_r / name).unlink()
    train_before = (stage_r / "train.json").read_text()
    log: list[str] = []
    again = _run(runs["ray_config"], log)
    assert (stage_r / "scores.jsonl").read_text() == (stage_l / "scores.jsonl").read_text()
    assert sum(_jobs_per_node(log)) == len(lost)
    assert (stage_r / "train.json").read_text() == train_before  # the saved adapter is not retrained
    assert again.iterations[0]["mean_score"] == local_result.iterations[0]["mean_score"]


def test_training_under_ray_train_uses_both_workers_and_saves_once(runs: dict[str, Any]) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    ray, result = runs["ray"]
    stage = ray / "iter-0"
    train = json.loads((stage / "train.json").read_text())
    assert train["launcher"] == "ray" and train["world_size"] == 2
    workers = train["workers"]
    assert [w["rank"] for w in workers] == [0, 1] and len({w["pid"] for w in workers}) == 2
    assert [w["saved_adapter"] for w in workers] == [True, False]  # rank 0 alone saves
    assert all(w["device"] == "cpu" for w in workers)
    assert train["steps"] > 0 and all(w["steps"] == train["steps"] for w in workers)
    assert train["train_loss"] is not None and train["device_seconds"] >= 2 * train["seconds"] * 0.99
    assert result.iterations[0]["train"]["steps"] == train["steps"]
    assert sorted(p.name for p in stage.iterdir() if p.name.startswith("adapter")) == ["adapter"]

    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(runs["model"]), stage / "adapter")
    lora_b = [p for n, p in model.named_parameters() if "lora_B" in n]
    assert lora_b and any(torch.count_nonzero(p) > 0 for p in lora_b)  # LoRA B starts at 0: it trained


# ----------------------------------------------------------------------------------- no cluster
def test_ray_settings_are_checked_and_ray_is_a_flag(tmp_path: Path) -> None:
    from sf_train.cli import _parse_config

    with pytest.raises(TrainConfigError, match="needs a cluster: set ray_address"):
        _config(tmp_path, tmp_path, train_launcher="ray")
    with pytest.raises(TrainConfigError, match="train_launcher"):
        _config(tmp_path, tmp_path, train_launcher="slurm")
    config = _parse_config(["--output_dir", str(tmp_path), "--ray", "auto", "--train_launcher", "ray"])
    assert config.ray_address == "auto" and config.train_launcher == "ray"


def test_missing_ray_names_the_extra_before_any_work(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from sf_train.ray_train import train_on_ray

    config = _config(tmp_path, tmp_path, ray_address="auto", train_launcher="ray")
    monkeypatch.setitem(sys.modules, "ray.train.torch", None)  # import -> ImportError
    with pytest.raises(MissingDependencyError, match=r'pip install "sf-train\[ray\]"'):
        train_on_ray(config, stage_dir=tmp_path, iteration=0, previous_adapter=None)
    monkeypatch.setitem(sys.modules, "ray", None)
    lines: list[str] = []
    with pytest.raises(MissingDependencyError, match=r'pip install "sf-train\[ray\]"'):
        _run(config, lines)
    assert not any("generating" in line for line in lines)  # it failed before generation
