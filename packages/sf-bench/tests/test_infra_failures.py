"""Our failures (the LLM endpoint, the sandbox) are never scores.

They are records of their own status, left out of scores and intervals, counted, redone on
resume, and the run exits 3 while any remain. The system's own workflow failures are counted by
reason. Real HTTP (a scripted OpenAI-compatible server on 127.0.0.1, the real openai client),
the real sandbox, the real CLI.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sf_bench.cli import main
from sf_bench.datasets import load
from sf_bench.harness import Harness
from sf_bench.records import RecordStatus, read_records
from sf_bench.types import Problem
from sf_workflows import Executor, ExecutorConfig
from sf_workflows.failures import InfrastructureError
from sf_workflows.testing import Fault, ScriptedServer, last_user_message


def rows(out: Path, dataset: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / f"{dataset}.jsonl").read_text().splitlines() if line.strip()]


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Executors built by the CLI retry within milliseconds and give up a request after 1 s."""
    defaults = ExecutorConfig.__init__.__kwdefaults__
    monkeypatch.setitem(defaults, "retry_base_delay", 0.01)
    monkeypatch.setitem(defaults, "retry_max_delay", 0.05)
    monkeypatch.setitem(defaults, "request_timeout", 1.0)


@pytest.fixture
def llm_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """One scripted server for executor and generator; ``holder["script"]`` answers."""
    holder: dict[str, Any] = {"script": lambda request: "no script"}
    with ScriptedServer(lambda request: holder["script"](request), hang_seconds=3.0) as server:
        for prefix in ("SF_EXECUTOR", "SF_GENERATOR"):
            monkeypatch.setenv(f"{prefix}_BASE_URL", server.base_url)
            monkeypatch.setenv(f"{prefix}_API_KEY", "k")
        monkeypatch.setenv("SF_GENERATOR_MODEL", "gen-model")
        monkeypatch.setenv("SF_WORKFLOWS_CACHE_DIR", str(tmp_path / "cache"))
        holder["server"] = server
        yield holder


def test_an_endpoint_failure_is_not_a_zero_and_is_redone_on_resume(make_problem: Any, tmp_path: Path) -> None:
    problems = [make_problem("gsm8k", f"p{i}", answer=str(i), prompt=f"what is {i}?") for i in range(3)]
    broken = {"p1"}

    def reply(request: dict[str, Any]) -> str:
        number = last_user_message(request).split()[-1].rstrip("?")
        if f"p{number}" in broken:
            raise RuntimeError("upstream down")  # the server answers HTTP 500
        return number

    with ScriptedServer(reply) as server:
        executor = Executor(
            ExecutorConfig(
                base_url=server.base_url,
                api_key="k",
                max_retries=1,
                retry_base_delay=0.01,
                cache_dir=str(tmp_path / "cache"),
            )
        )

        async def solve(problem: Problem) -> str:
            return (await executor.complete([{"role": "user", "content": problem.prompt}])).text

        first = Harness(solve, out_dir=tmp_path / "out", close_system=False).run({"gsm8k": problems})["gsm8k"]
        (bad,) = [r for r in read_records(tmp_path / "out" / "gsm8k.jsonl") if r.problem_id == "p1"]
        assert bad.status is RecordStatus.INFRA_ERROR and bad.failure == "infra:endpoint"
        assert server.base_url in (bad.error or "") and "HTTP 500" in (bad.error or "")
        assert first.score.value == 1.0 and first.problems == 2 and first.infra_records == 1
        assert first.to_json()["infra_records"] == 1
        broken.clear()  # the endpoint is back
        sent = server.chat_requests
        again = Harness(solve, out_dir=tmp_path / "out").run({"gsm8k": problems})["gsm8k"]
        assert server.chat_requests == sent + 1  # only the failed sample is asked again
        assert again.score.value == 1.0 and again.problems == 3 and again.infra_records == 0
        executor.close_cache()


def test_cli_exits_3_with_one_line_then_a_rerun_completes(
    llm_env: dict[str, Any], oracle: Any, tmp_path: Path, run_args: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    problems = load("gsm8k", "validate", limit=2)
    llm_env["script"] = oracle(problems)
    server: ScriptedServer = llm_env["server"]
    server.fail(500, 14, retry_after=0)  # 7 attempts (6 retries) for each of the 2 calls
    out = tmp_path / "run"
    assert main(run_args("gsm8k", "io", out, "--limit", "2")) == 3
    captured = capsys.readouterr()
    err = [line for line in captured.err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("error: 2 sample(s) not scored"), err
    assert "endpoint 2" in err[0] and "rerun the same command" in err[0] and "Traceback" not in captured.err
    assert "14 HTTP attempt(s) failed" in captured.out and "2 call(s) still failed" in captured.out
    summary = json.loads((out / "summary.json").read_text())["gsm8k"]
    assert summary["infra_records"] == 2 and summary["score"]["value"] is None
    assert all(r["status"] == "infra_error" and r["failure"] == "infra:endpoint" for r in rows(out, "gsm8k"))
    assert main(run_args("gsm8k", "io", out, "--limit", "2")) == 0  # healthy again: redone, scored
    summary = json.loads((out / "summary.json").read_text())["gsm8k"]
    assert summary["infra_records"] == 0 and summary["score"]["value"] == 1.0


def test_a_sample_whose_sandbox_keeps_failing_is_given_up_after_the_cap(
    tmp_path: Path, make_problem: Any
) -> None:
    problems = [make_problem("gsm8k", "p0", answer="0"), make_problem("gsm8k", "p1", answer="1")]
    calls: list[str] = []

    async def solve(problem: Problem) -> str:
        calls.append(problem.id)
        if problem.id == "p1":
            raise InfrastructureError("sandbox_error: container vanished", cause="sandbox")
        return "0"

    out = tmp_path / "out"
    for attempt in (1, 2):
        s = Harness(solve, out_dir=out, sandbox_redo_cap=2).run({"gsm8k": problems})["gsm8k"]
        last = read_records(out / "gsm8k.jsonl")[-1]
        assert last.failure == "infra:sandbox" and last.attempt == attempt and last.final == (attempt == 2)
        assert s.infra_records == 1 and s.infra_final == (attempt == 2) and s.score.value == 1.0
    assert calls == ["p0", "p1", "p1"]
    Harness(solve, out_dir=out, sandbox_redo_cap=2).run({"gsm8k": problems})
    assert calls == ["p0", "p1", "p1"]  # given up: not redone again


@pytest.mark.docker
def test_garbage_generator_replies_are_no_workflow_and_rejected_samples_are_kept(
    llm_env: dict[str, Any],
    oracle: Any,
    tmp_path: Path,
    run_args: Any,
    docker_ready: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    problems = load("gsm8k", "validate", limit=1)
    answers = oracle(problems)

    def script(request: dict[str, Any]) -> str:
        if "Here is the graph without any problem information" in last_user_message(request):
            return "Sorry, I cannot write that."
        return answers(request)

    llm_env["script"] = script
    monkeypatch.setenv("SF_GENERATOR_MAX_ROUNDS", "2")
    out = tmp_path / "run"
    assert main(run_args("gsm8k", "llm", out, "--limit", "1")) == 0
    (row,) = rows(out, "gsm8k")
    assert row["score"] == 0.0 and row["failure"] == "workflow:no_workflow" and row["status"] == "scored"
    assert "no workflow in the reply" in row["error"]
    summary = json.loads((out / "summary.json").read_text())["gsm8k"]
    assert summary["workflow_failures"] == {"no_workflow": 1} and summary["infra_records"] == 0
    assert "no_workflow 1" in capsys.readouterr().out  # the table's failures column
    rejected = [json.loads(line) for line in (out / "gsm8k" / "rejected.jsonl").read_text().splitlines()]
    assert [(r["slot"], r["round"]) for r in rejected] == [(0, 0), (0, 1)]
    assert all(r["reply"].startswith("Sorry") and "no workflow in the reply" in r["reason"] for r in rejected)


@pytest.mark.docker
def test_a_run_against_an_endpoint_failing_20_percent_of_calls_scores_as_a_healthy_one(
    llm_env: dict[str, Any],
    oracle: Any,
    tmp_path: Path,
    run_args: Any,
    docker_ready: None,
    fast_retries: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    problems = load("gsm8k", "validate", limit=4)
    llm_env["script"] = oracle(problems)
    server: ScriptedServer = llm_env["server"]
    args = ("--generator", "template:cot_sc", "--limit", "4", "--k", "2")

    def run(name: str) -> dict[tuple[str, int], tuple[float, str]]:
        monkeypatch.setenv("SF_WORKFLOWS_CACHE_DIR", str(tmp_path / f"cache-{name}"))
        out = tmp_path / name
        argv = ["run", "gsm8k", "--split", "validate", *args, "--out", str(out), "-q"]
        assert main(argv) == 0, capsys.readouterr().err
        return {(r["problem_id"], r["sample"]): (r["score"], r["answer"]) for r in rows(out, "gsm8k")}

    healthy = run("healthy")
    assert server.failed_requests == 0 and len(healthy) == 8
    capsys.readouterr()  # only the faulty run's report below (a loaded machine may time out here too)
    server.failure_rate = 0.2
    server.random_faults = tuple(Fault)
    faulty = run("faulty")
    # a drip is the right reply sent slowly: served as a fault, but the client only fails it on a timeout
    failed = server.failed_requests - server.faults_served[str(Fault.DRIP)]
    assert faulty == healthy and server.failed_requests > 0
    said = re.search(r"LLM endpoint: (\d+) HTTP attempt\(s\) failed", capsys.readouterr().out)
    assert said is not None and int(said.group(1)) >= failed  # (a loaded machine may time out more)


def test_a_generator_endpoint_down_past_the_retries_is_one_line_saying_to_rerun(
    llm_env: dict[str, Any], oracle: Any, tmp_path: Path, run_args: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    problems = load("gsm8k", "validate", limit=1)
    llm_env["script"] = oracle(problems)
    server: ScriptedServer = llm_env["server"]
    server.fail(503, 7, retry_after=0)  # the generator's one call and its 6 retries
    assert main(run_args("gsm8k", "llm", tmp_path / "run", "--limit", "1")) == 1
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and "HTTP 503" in err[0] and server.base_url in err[0], err
    assert "our failure, not the system's: rerun the same command" in err[0]
