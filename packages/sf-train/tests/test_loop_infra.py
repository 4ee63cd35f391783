"""The loop against an executor endpoint that fails.

Real HTTP (a scripted OpenAI-compatible server on 127.0.0.1 and the real openai client), real
sandbox, real training: our failures are
retried within the iteration, never reach the pairs, are counted, and past the allowed share
stop the iteration, which resumes cleanly once the endpoint is back.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sf_train.demo import SKILLS, demo_config, demo_problems, demo_prompt, respond
from sf_train.loop import run_loop
from sf_train.scoring import InfraFailureError
from sf_workflows import Executor, ExecutorConfig
from sf_workflows.testing import Fault, ScriptedServer

pytestmark = [pytest.mark.docker]


def config(tmp: Path, warmup: Path, name: str, **kw: Any) -> Any:
    options = dict(
        k=4,
        runs_per_workflow=1,
        num_pairs=8,
        eval_k=2,
        eval_each_iteration=False,
        iterations=1,
        model_name_or_path=str(warmup),
        max_new_tokens=24,
    )
    options.update(kw)
    return demo_config(tmp / name, **options)


def http_executor(server: ScriptedServer, cache: Path, **kw: Any) -> Executor:
    options: dict[str, Any] = dict(retry_base_delay=0.01, retry_max_delay=0.05, request_timeout=1.0)
    options.update(kw)
    return Executor(
        ExecutorConfig(
            model="demo-scripted", base_url=server.base_url, api_key="k", cache_dir=str(cache), **options
        )
    )


def loop(cfg: Any, executor: Any, lines: list[str] | None = None) -> Any:
    return run_loop(
        cfg,
        train_problems=demo_problems(range(4)),
        eval_problems=[],
        executor=executor,
        prompt_fn=demo_prompt,
        dataset_name="hotpotqa",
        reporter=(lines.append if lines is not None else (lambda line: None)),
    )


def jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


class BreakTask:
    """Answers as the demo's executor, except while ``broken`` is set.

    Then every request of task ``task`` whose instruction names fewer than ``min_skills`` skills
    fails (HTTP 500, on every
    retry): the workflows that would have lost, so without the fix they would be paired.
    """

    def __init__(self, task: int, min_skills: int = 2) -> None:
        self.mark = f"task {task}?"
        self.min_skills = min_skills
        self.broken = True

    def __call__(self, request: dict[str, Any]) -> str:
        text = str(request["messages"][-1]["content"])
        instruction = text.partition("\n\n")[0]
        if self.broken and self.mark in text and sum(s in instruction for s in SKILLS) < self.min_skills:
            raise RuntimeError("upstream down")  # the server answers HTTP 500
        return respond(request)


def test_an_iteration_against_an_endpoint_failing_20_percent_of_calls_gives_the_healthy_pairs(
    tmp_path: Path, demo_warmup: Path, require_docker: None
) -> None:
    with ScriptedServer(respond) as healthy:
        loop(config(tmp_path, demo_warmup, "healthy"), http_executor(healthy, tmp_path / "c1"))
    faults = [Fault.STATUS, Fault.RESET, Fault.EMPTY_CHOICES, Fault.NON_JSON, Fault.HANG, Fault.DRIP]
    lines: list[str] = []
    with ScriptedServer(
        respond, failure_rate=0.2, random_faults=faults, seed=3, hang_seconds=3.0, drip_seconds=2.0
    ) as faulty:
        executor = http_executor(faulty, tmp_path / "c2")
        loop(config(tmp_path, demo_warmup, "faulty"), executor, lines)
        failed = faulty.failed_requests
    a, b = tmp_path / "healthy" / "run" / "iter-0", tmp_path / "faulty" / "run" / "iter-0"
    assert failed > 0
    assert jsonl(a / "pairs.jsonl") == jsonl(b / "pairs.jsonl")
    assert [(s["score"], s["failure"]) for s in jsonl(a / "scores.jsonl")] == [
        (s["score"], s["failure"]) for s in jsonl(b / "scores.jsonl")
    ]
    metrics = json.loads((b / "metrics.json").read_text())
    said = metrics["cost"]["executor_failed_attempts"]
    assert metrics["infra_failed_samples"] == 0
    assert said == executor.failed_attempts >= failed, (said, executor.failed_attempts, failed, metrics)
    assert any("executor calls failed and were retried" in line for line in lines), lines


def test_no_infra_failed_sample_reaches_the_pairs_and_they_are_counted(
    tmp_path: Path, demo_warmup: Path, require_docker: None
) -> None:
    script = BreakTask(2)
    with ScriptedServer(script) as server:
        cfg = config(tmp_path, demo_warmup, "run", max_infra_failure_share=0.5)
        loop(cfg, http_executor(server, tmp_path / "cache", max_retries=1))
    stage = tmp_path / "run" / "run" / "iter-0"
    scores = jsonl(stage / "scores.jsonl")
    infra = {(s["task_id"], s["index"]) for s in scores if s["infra"]}
    assert infra and all(task == "demo-2" for task, _ in infra)
    assert all(s["infra"].startswith("infra:endpoint") for s in scores if s["infra"])
    pairs = jsonl(stage / "pairs.jsonl")
    assert any(p["task_id"] == "demo-2" for p in pairs)  # its scored workflows still pair
    for pair in pairs:
        assert (pair["task_id"], pair["chosen_index"]) not in infra
        assert (pair["task_id"], pair["rejected_index"]) not in infra
    metrics = json.loads((stage / "metrics.json").read_text())
    assert metrics["infra_failed_samples"] == len(infra) and metrics["samples"] == 16


def test_past_the_allowed_share_the_iteration_stops_and_resumes_once_the_endpoint_is_back(
    tmp_path: Path, demo_warmup: Path, require_docker: None
) -> None:
    script = BreakTask(2)
    with ScriptedServer(script) as server:
        cfg = config(tmp_path, demo_warmup, "run")  # default share: 5%
        with pytest.raises(InfraFailureError, match=r"of 16 workflows .* could not be scored") as info:
            loop(cfg, http_executor(server, tmp_path / "cache", max_retries=1))
        assert "rerun the same command once the endpoint is back" in str(info.value)
        assert server.base_url in str(info.value)
        stage = tmp_path / "run" / "run" / "iter-0"
        assert not (stage / "scores.jsonl").exists() and not (stage / "pairs.jsonl").exists()
        script.broken = False  # the endpoint is back
        sent = server.chat_requests
        result = loop(cfg, http_executor(server, tmp_path / "cache", max_retries=1))
        redone = server.chat_requests - sent
    assert redone == 2  # only the 2 failed workflows of task 2 (one call each) are asked again
    assert result.iterations[0]["infra_failed_samples"] == 0
    assert all(s["infra"] is None for s in jsonl(stage / "scores.jsonl"))
    assert (stage / "adapter" / "adapter_config.json").exists()
