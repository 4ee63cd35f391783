"""Profiles (``profile: ours | scoreflow``).

Per-dataset defaults, the help that names them, and the loop hooks they switch (validity filters,
answer extraction, operator style, BOS).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from sf_train import TrainConfigError
from sf_train.cli import main
from sf_train.config import ScoreDPOConfig
from sf_train.demo import demo_config, demo_problems, demo_prompt, make_executor
from sf_train.loop import run_loop
from sf_train.profiles import PROFILE_FIELDS, training_tokenizer


def config(**kw):
    return ScoreDPOConfig(output_dir="/tmp/unused", use_cpu=True, report_to="none", **kw)


@pytest.mark.parametrize(
    ("profile", "dataset", "expected"),
    [
        (
            "ours",
            "humaneval",
            dict(num_pairs=2000, workflow_timeout=120.0, iterations=3, max_regenerations=0),
        ),
        ("ours", "hotpotqa", dict(validity_filters=False, answer_extraction=False, train_bos_token=True)),
        (
            "scoreflow",
            "humaneval",
            dict(
                num_pairs=600, workflow_timeout=240.0, iterations=2, max_regenerations=500, sim_threshold=1.1
            ),
        ),
        ("scoreflow", "mbpp", dict(num_pairs=2000, workflow_timeout=240.0, answer_extraction=False)),
        (
            "scoreflow",
            "gsm8k",
            dict(
                num_pairs=2000,
                workflow_timeout=120.0,
                sim_threshold=0.8,
                banned_substrings=[".split(' ')", "int(", "self.loop.append"],
                answer_extraction=True,
                validity_filters=True,
                train_bos_token=False,
                generator_prompt="scoreflow",
                operator_prompts="scoreflow",
            ),
        ),
        ("scoreflow", "drop", dict(sim_threshold=0.75, banned_substrings=[".split(' ')", "int("])),
    ],
)
def test_profile_fills_the_per_dataset_defaults(profile: str, dataset: str, expected: dict) -> None:
    cfg = config(profile=profile, dataset=dataset)
    assert {k: getattr(cfg, k) for k in expected} == expected
    assert set(cfg.from_profile) == set(PROFILE_FIELDS)  # every governed field came from it


def test_a_field_you_set_wins_over_the_profile() -> None:
    cfg = config(profile="scoreflow", dataset="humaneval", num_pairs=50, train_bos_token=True)
    assert cfg.num_pairs == 50 and cfg.train_bos_token is True
    assert "num_pairs" not in cfg.from_profile and cfg.from_profile["workflow_timeout"] == 240.0


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        (dict(profile="paper"), "`profile`: must be one of ours, scoreflow"),
        (dict(dataset="humaneval", answer_extraction=True), "`answer_extraction`: applies to gsm8k"),
        (dict(workflow_timeout=0.0), "`workflow_timeout`: must be > 0"),
    ],
)
def test_bad_profile_settings_name_the_field(kw: dict, message: str) -> None:
    with pytest.raises(TrainConfigError, match=message):
        config(**kw)


def test_run_help_says_which_profile_each_default_comes_from(capsys) -> None:
    assert main(["run", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--profile {ours,scoreflow}" in text
    assert (
        "[default from the profile; ours: 2000; scoreflow: humaneval 600, mbpp 2000, gsm8k 2000, "
        "math 2000, drop 2000, hotpotqa 2000]" in text
    )
    assert "[default from the profile; ours: 120.0; scoreflow: humaneval 240.0, mbpp 240.0" in text
    assert "[default from the profile; ours: True; scoreflow: False]" in text  # train_bos_token


def test_scoreflow_profile_without_a_checkout_is_one_line_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.delenv("SF_SCOREFLOW_SOURCE", raising=False)
    args = ["run", "--profile", "scoreflow", "--dataset", "gsm8k", "--limit", "1", "--use_cpu", "true"]
    assert main([*args, "--output_dir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "no license" in err and "SF_SCOREFLOW_SOURCE" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_training_tokenizer_drops_the_bos_only_when_asked(tokenizer) -> None:
    import copy

    from tokenizers.processors import TemplateProcessing

    with_bos = copy.deepcopy(tokenizer)
    with_bos.backend_tokenizer.post_processor = TemplateProcessing(
        single="<s> $A", special_tokens=[("<s>", with_bos.bos_token_id)]
    )
    assert with_bos("class Workflow")["input_ids"][0] == with_bos.bos_token_id
    assert training_tokenizer(with_bos, bos=True) is with_bos
    plain = training_tokenizer(with_bos, bos=False)
    assert plain("class Workflow")["input_ids"] == with_bos("class Workflow")["input_ids"][1:]
    assert with_bos("class Workflow")["input_ids"][0] == with_bos.bos_token_id  # the original keeps it


# ---- the loop --------------------------------------------------------------------------------


def _loop(tmp_path: Path, warmup: Path, executor, **kw):
    cfg = demo_config(
        tmp_path,
        **{
            "k": 4,
            "runs_per_workflow": 1,
            "num_pairs": 8,
            "eval_k": 2,
            "eval_each_iteration": False,
            "iterations": 1,
            "model_name_or_path": str(warmup),
            "max_new_tokens": 24,
            "eval_split": "",
            **kw,
        },
    )
    result = run_loop(
        cfg,
        train_problems=demo_problems(range(4)),
        eval_problems=None,
        executor=executor,
        prompt_fn=demo_prompt,
        dataset_name="hotpotqa",
        reporter=lambda line: None,
    )
    return cfg, result, tmp_path / "run"


def _rows(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()] if path.exists() else []


@pytest.mark.docker
def test_filters_record_rejections_that_are_never_scored_or_paired(tmp_path, demo_warmup, require_docker):
    from sf_train.demo import respond
    from sf_workflows.testing import ScriptedLLM

    executor = ScriptedLLM(respond, model="demo-scripted", cost_per_token=1e-6)
    banned = "Check each fact."  # one of the demo's four skills: every workflow using it is rejected
    _, result, out = _loop(
        tmp_path,
        demo_warmup,
        executor,
        validity_filters=True,
        banned_substrings=[banned],
        max_regenerations=0,
        answer_extraction=True,
    )
    rejections = _rows(out / "iter-0" / "rejections.jsonl")
    scores = _rows(out / "iter-0" / "scores.jsonl")
    rejected = {(r["task_id"], r["sample"]) for r in rejections}
    assert rejected and all(r["reason"] == "banned_substring" and banned in r["detail"] for r in rejections)
    for s in scores:
        if (s["task_id"], s["index"]) in rejected:
            assert banned in s["completion"] and s["score"] == 0.0
            assert s["failure"].startswith("rejected: banned_substring")
        else:
            assert banned not in s["completion"]
    for pair in _rows(out / "iter-0" / "pairs.jsonl"):
        assert (pair["task_id"], pair["chosen_index"]) not in rejected
        assert (pair["task_id"], pair["rejected_index"]) not in rejected
    accepted = len(scores) - len(rejected)
    workflow_calls = [r for r in executor.requests if "Response:" not in r["messages"][-1]["content"]]
    extractions = [r for r in executor.requests if "Extract the final answer" in r["messages"][-1]["content"]]
    assert len(workflow_calls) == accepted  # a rejected workflow never ran
    assert len(extractions) == accepted  # each answer was extracted once before scoring
    assert result.iterations[0]["cost"]["executor_usd"] > 0  # extraction is executor spend too
    records = _rows(out / "iter-0" / "bench" / "hotpotqa.jsonl")
    assert sum(1 for r in records if r["runs"][0].get("scoring_cost", 0) > 0) == accepted
    profile = json.loads((out / "config.json").read_text())["profile"]
    assert profile["name"] == "ours" and "validity_filters" not in profile["from_profile"]


@pytest.fixture
def scoreflow_checkout() -> Path:
    raw = os.environ.get("SF_SCOREFLOW_SOURCE")
    if not raw:
        if os.environ.get("SF_REQUIRE_SCOREFLOW") == "1":
            pytest.fail("SF_REQUIRE_SCOREFLOW=1 but SF_SCOREFLOW_SOURCE names no ScoreFlow checkout")
        pytest.skip("set SF_SCOREFLOW_SOURCE to a Gen-Verse/ScoreFlow checkout")
    return Path(raw)


@pytest.mark.docker
def test_scoreflow_profile_runs_the_loop_with_scoreflows_operators(
    tmp_path, demo_warmup, require_docker, scoreflow_checkout
):
    from sf_train.profiles import RunProfile
    from sf_workflows.generator.scoreflow import generator_prompt, load_official

    executor = make_executor()
    cfg, result, out = _loop(
        tmp_path, demo_warmup, executor, profile="scoreflow", scoreflow_source=str(scoreflow_checkout)
    )
    saved = json.loads((out / "config.json").read_text())["profile"]
    assert saved["name"] == "scoreflow" and saved["from_profile"]["answer_extraction"] is True
    assert any("sandbox" in d for d in saved["differences_from_scoreflow"])  # the output names them
    calls = [r["messages"] for r in executor.requests]
    assert calls and all(m[0] == {"role": "system", "content": "You are a helpful assistant."} for m in calls)
    problem = demo_problems([0])[0]
    official = load_official("hotpotqa", scoreflow_checkout)
    assert RunProfile(cfg, "hotpotqa").prompt(problem) == generator_prompt(official, problem)
    assert result.iterations[0]["samples"] == 16
