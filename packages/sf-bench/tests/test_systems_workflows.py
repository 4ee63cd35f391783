"""The sf-workflows systems in sf-bench, end to end through ``sf bench run``.

The io/cot/cot-sc solvers, template:NAME and the llm generator, against a scripted
OpenAI-compatible server (real HTTP, real openai client) and the real sandbox.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sf_bench.cli import main
from sf_bench.datasets import DATASETS, load
from sf_bench.errors import BenchConfigError
from sf_bench.systems import resolve
from sf_workflows.testing import ScriptedServer, last_user_message

GENERATOR_MARK = "Here is the graph without any problem information"


def load_some(dataset: str, n: int = 2) -> list[Any]:
    return load(dataset, "validate", limit=n)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Any]:
    """Point the executor and the generator at one scripted server; returns a setter for its script."""
    holder: dict[str, Any] = {"script": lambda request: "no script"}
    with ScriptedServer(lambda request: holder["script"](request)) as server:
        monkeypatch.setenv("SF_EXECUTOR_BASE_URL", server.base_url)
        monkeypatch.setenv("SF_GENERATOR_BASE_URL", server.base_url)
        monkeypatch.setenv("SF_EXECUTOR_API_KEY", "k")
        monkeypatch.setenv("SF_GENERATOR_API_KEY", "k")
        monkeypatch.setenv("SF_GENERATOR_MODEL", "gen-model")
        monkeypatch.setenv("SF_WORKFLOWS_CACHE_DIR", str(tmp_path / "cache"))
        holder["server"] = server
        yield holder


def records(out: Path, dataset: str) -> list[dict]:
    return [json.loads(line) for line in (out / f"{dataset}.jsonl").read_text().splitlines() if line.strip()]


@pytest.mark.parametrize("solver", ["io", "cot", "cot-sc"])
def test_baselines_solve_gsm8k_through_the_harness(
    oracle: Any, solver: str, env: Any, tmp_path: Path, run_args: Any
) -> None:
    problems = load_some("gsm8k")
    env["script"] = oracle(problems)
    out = tmp_path / "run"
    assert main(run_args("gsm8k", solver, out, "--limit", "2")) == 0
    rows = records(out, "gsm8k")
    assert len(rows) == 2 and all(r["score"] == 1.0 for r in rows), rows
    calls = {"io": 1, "cot": 1, "cot-sc": 6}[solver]
    assert all(r["runs"][0]["metadata"]["llm_calls"] == calls for r in rows)
    assert all(
        r["runs"][0]["input_tokens"] > 0 and r["runs"][0]["metadata"]["cost_split"]["generator"] == 0.0
        for r in rows
    )
    first = env["server"].requests[0]
    assert first["model"] == "gpt-4o-mini" and first["temperature"] in (0.0, 0.7)


def test_baseline_without_endpoint_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("OPENAI_API_KEY", "SF_EXECUTOR_API_KEY", "OPENAI_BASE_URL", "SF_EXECUTOR_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(BenchConfigError, match="--base-url"):
        resolve("cot")
    with pytest.raises(BenchConfigError, match="takes no argument"):
        resolve("io:x")


def test_template_spec_errors(env: Any) -> None:
    with pytest.raises(BenchConfigError, match="needs a workflow name"):
        resolve("template")
    with pytest.raises(BenchConfigError, match="unknown workflow template 'nope'"):
        resolve("template:nope")


@pytest.mark.docker
def test_template_generator_on_code_runs_in_the_sandbox(
    oracle: Any, env: Any, tmp_path: Path, docker_ready: None, run_args: Any
) -> None:
    problems = load_some("humaneval")
    env["script"] = oracle(problems)
    out = tmp_path / "run"
    assert main(run_args("humaneval", "template:scoreflow", out, "--limit", "2", "--k", "2")) == 0
    rows = records(out, "humaneval")
    assert len(rows) == 4 and all(r["score"] == 1.0 for r in rows), [r.get("error") for r in rows]
    assert all(
        r["runs"][0]["metadata"]["workflow_status"] == "ok"
        and "class Workflow" in r["runs"][0]["metadata"]["workflow"]
        for r in rows
    )


@pytest.mark.docker
@pytest.mark.parametrize("dataset", DATASETS)
def test_llm_generator_end_to_end_on_each_dataset(
    oracle: Any, dataset: str, env: Any, tmp_path: Path, docker_ready: None, run_args: Any
) -> None:
    problems = load_some(dataset)
    script = oracle(problems)
    env["script"] = script
    out = tmp_path / "run"
    assert main(run_args(dataset, "llm:gen-model", out, "--limit", "2", "--k", "2")) == 0
    rows = records(out, dataset)
    assert len(rows) == 4, rows
    assert script.generator_calls == 4  # k=2 workflows for each of 2 problems
    assert all(r["runs"][0]["metadata"]["workflow_status"] == "ok" for r in rows), [
        r["runs"][0]["metadata"] for r in rows
    ]
    assert all(r["score"] == 1.0 for r in rows), [
        (r["answer"][:80], r["runs"][0].get("detail")) for r in rows
    ]
    gen_requests = [r for r in env["server"].requests if GENERATOR_MARK in last_user_message(r)]
    assert all(
        r["model"] == "gen-model" and r["stop"] == ["</graph>"] and r["temperature"] == 0.2
        for r in gen_requests
    )
    if dataset in ("drop", "hotpotqa"):  # the generator sees the question, not the context passages
        context = problems[0].extras.get("passage") or str(problems[0].extras.get("context"))[:200]
        assert all(context[:100] not in last_user_message(r) for r in gen_requests)
    assert (out / "workflows.jsonl").exists() or any(out.rglob("workflows.jsonl"))


def test_llm_generator_resamples_invalid_workflows(oracle: Any, env: Any) -> None:
    from sf_bench.systems.baselines import executor_from_env
    from sf_bench.systems.llm_generator import LLMWorkflowGenerator

    problems = load_some("gsm8k", 1)
    env["script"] = oracle(problems, bad_first=2)
    generator = LLMWorkflowGenerator(executor_from_env("SF_GENERATOR"), max_rounds=5)
    (sources,) = asyncio.run(generator.generate(problems, 1))
    assert "import os" not in sources[0] and "class Workflow" in sources[0]
    reasons = generator.invalid[(problems[0].id, 0)]
    assert len(reasons) == 2 and all("import of 'os' is not allowed" in r for r in reasons)
    assert (
        generator.generator_cost[(problems[0].id, 0)] == 0.0
    )  # gen-model is unpriced: $0, tokens still counted


@pytest.mark.docker
def test_invalid_workflow_scores_zero_with_reason(
    oracle: Any, env: Any, tmp_path: Path, docker_ready: None, monkeypatch: pytest.MonkeyPatch, run_args: Any
) -> None:
    problems = load_some("gsm8k", 1)
    env["script"] = oracle(problems, bad_first=10)
    monkeypatch.setenv("SF_GENERATOR_ON_INVALID", "score0")
    out = tmp_path / "run"
    assert main(run_args("gsm8k", "llm", out, "--limit", "1")) == 0
    (row,) = records(out, "gsm8k")
    assert row["score"] == 0.0 and row["runs"][0]["metadata"]["workflow_status"] == "invalid"
    assert re.search(r"import of 'os' is not allowed", row["runs"][0]["metadata"]["workflow_error"])


def test_generator_and_executor_costs_are_kept_apart(oracle: Any, env: Any) -> None:
    from sf_bench.systems.llm_generator import llm_system
    from sf_bench.systems.template import SandboxRunner
    from sf_workflows import Executor, ExecutorConfig, PriceTable
    from sf_workflows.executor import Price

    problems = load_some("gsm8k", 1)
    env["script"] = oracle(problems)
    system = llm_system("gpt-4o-mini")  # priced: the generator's calls cost money

    class InProcessRunner(SandboxRunner):
        async def run(self, source: str, problem: Any) -> Any:
            from sf_bench.systems.baselines import outcome_answer
            from sf_workflows import run_workflow_unsafe

            outcome = await run_workflow_unsafe(source, problem, self.executor)
            return outcome_answer(outcome)

    table = PriceTable().extended({"exec-model": Price(1.0, 1.0)})
    executor = Executor(
        ExecutorConfig(model="exec-model", base_url=env["server"].base_url, api_key="k", use_cache=False),
        prices=table,
    )
    system.runner = InProcessRunner(executor)
    asyncio.run(system.prepare(problems, 1, None))
    answer = asyncio.run(system.answer(problems[0], 0))
    split = answer.metadata["cost_split"]
    assert split["generator"] > 0 and split["executor"] > 0
    assert answer.cost == pytest.approx(split["generator"] + split["executor"])
    again = asyncio.run(system.answer(problems[0], 0))  # a repeat is not charged the generation again
    assert again.metadata["cost_split"]["generator"] == 0.0
