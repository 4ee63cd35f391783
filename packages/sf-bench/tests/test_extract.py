"""``--extract`` / :class:`LLMExtract`: LLM answer extraction before the official scorer.

A labelled metric (``f1+llm-extract``...), costed as scoring spend and served from the
executor's cache when repeated. Real HTTP (sf-workflows' ScriptedServer), real openai client.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sf_bench.cli import main
from sf_bench.datasets import load
from sf_bench.systems.extract import LLMExtract
from sf_workflows.generator.scoreflow import load_official
from sf_workflows.testing import ScriptedLLM, ScriptedServer, write_fake_scoreflow_checkout

EXTRACT_MARK = "Extract the final answer from the response below"

WORDY_SOLVER = """
def solve(problem):
    return ("Let me think about every passage carefully, one by one, before answering. "
            "After weighing all of it, the answer is " + problem.answers[0] + ", as the context shows.")
"""


@pytest.fixture
def server(no_llm_env: None, oracle: Any) -> Iterator[tuple[ScriptedServer, Any]]:
    problems = load("hotpotqa", "validate", limit=2)
    script = oracle(problems)
    with ScriptedServer(script) as srv:
        yield srv, problems


def _records(out: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (out / "hotpotqa.jsonl").read_text().splitlines() if x.strip()]


def test_extract_scores_the_extracted_answer_under_its_own_metric(
    server: tuple[ScriptedServer, Any], tmp_path: Path, capsys: Any
) -> None:
    srv, _ = server
    solver = tmp_path / "wordy.py"
    solver.write_text(WORDY_SOLVER)
    args = ["run", "hotpotqa", "--split", "validate", "--limit", "2", "--solver", f"{solver}:solve"]
    args += ["--executor-model", "gpt-4o-mini", "--base-url", srv.base_url, "-q", "--extract", "ours"]
    out = tmp_path / "extracted"
    assert main([*args, "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())["hotpotqa"]
    assert summary["metric"] == "f1+llm-extract"
    assert summary["score"]["value"] == 1.0  # the wordy but correct answers, extracted
    assert summary["scoring_cost"] > 0  # gpt-4o-mini extraction calls are priced
    assert json.loads((out / "run.json").read_text())["scoring"] == {"hotpotqa": "f1+llm-extract"}
    for rec in _records(out):
        run = rec["runs"][0]
        assert run["metrics"]["raw"] < 0.5  # the official F1 of the raw text, kept beside
        assert run["scoring_cost"] > 0
    extractions = sum(EXTRACT_MARK in str(r["messages"]) for r in srv.requests)
    assert extractions == 2

    # the same extraction again (a new run folder) is answered by the executor's cache
    assert main([*args, "--out", str(tmp_path / "again")]) == 0
    assert sum(EXTRACT_MARK in str(r["messages"]) for r in srv.requests) == 2
    again = json.loads((tmp_path / "again" / "summary.json").read_text())["hotpotqa"]
    assert again["score"]["value"] == 1.0

    # without --extract the same answers score their raw, official F1
    assert main([*args[:-2], "--out", str(tmp_path / "raw")]) == 0
    raw = json.loads((tmp_path / "raw" / "summary.json").read_text())["hotpotqa"]
    assert raw["metric"] == "official" and raw["score"]["value"] < 0.5


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["hotpotqa", "--extract", "ours", "--judge"], "--extract and --judge are exclusive"),
        (["humaneval", "--extract", "ours"], "--extract applies to gsm8k, math, drop, hotpotqa"),
        (["hotpotqa", "--extract", "theirs"], "Invalid value for '--extract'"),
    ],
)
def test_extract_flag_mistakes_are_one_line_exit_2(
    no_llm_env: None, capsys: Any, extra: list[str], message: str
) -> None:
    code = main(
        ["run", *extra, "--split", "validate", "--limit", "1", "--base-url", "http://127.0.0.1:9", "-q"]
    )
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err


def test_scoreflow_style_sends_scoreflows_extraction_prompt(tmp_path: Path) -> None:
    official = load_official("drop", write_fake_scoreflow_checkout(tmp_path, "DROP"), verify=False)
    problem = load("drop", "validate", limit=1)[0]
    llm = ScriptedLLM(problem.answers[0])
    score = asyncio.run(LLMExtract("drop", llm, style="scoreflow", official=official)(problem, "long text"))
    question = problem.extras["question"].strip()
    assert llm.requests[0]["messages"] == [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": f"[extract] {question} || long text"},
    ]
    assert score.value == 1.0 and score.metrics["raw"] == 0.0
