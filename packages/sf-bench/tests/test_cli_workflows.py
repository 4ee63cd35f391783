"""``sf bench run`` with LLM systems, end to end through ``main([...])``.

``--generator llm`` and ``template:NAME`` against sf-workflows' ScriptedServer (real HTTP, real
openai client, real sandbox), ``--judge``, the generator/executor cost split, missing keys,
resume, and the harness closing what a system owns.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sf_bench.cli import main
from sf_bench.datasets import DATASETS, load
from sf_bench.harness import Harness
from sf_bench.scorers import default_metric
from sf_workflows.testing import ScriptedServer, last_user_message

GENERATOR_MARK = "Here is the graph without any problem information"
JUDGE_MARK = "Only output 1 (correct) or 0 (incorrect)"


@pytest.fixture
def server(no_llm_env: None) -> Iterator[dict[str, Any]]:
    """A scripted server (its script settable through the returned dict); no key in the env."""
    holder: dict[str, Any] = {"script": lambda request: "no script"}
    with ScriptedServer(lambda request: holder["script"](request)) as srv:
        holder["server"] = srv
        holder["url"] = srv.base_url
        yield holder


def records(out: Path, dataset: str) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (out / f"{dataset}.jsonl").read_text().splitlines() if x.strip()]


def table_rows(text: str) -> dict[str, dict[str, str]]:
    """The summary table printed by ``sf bench run``: {dataset: {column: cell}}."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("dataset"))
    dashes = lines[start + 1]
    spans, i = [], 0
    while i < len(dashes):  # columns are the runs of dashes
        if dashes[i] == "-":
            j = i
            while j < len(dashes) and dashes[j] == "-":
                j += 1
            spans.append((i, j))
            i = j
        else:
            i += 1
    cut = lambda line: [line[a:b].strip() for a, b in spans]  # noqa: E731
    header = cut(lines[start].ljust(len(dashes)))
    out = {}
    for line in lines[start + 2 :]:
        if not line.strip() or line.startswith(("llm-judge", "error")):
            break
        cells = cut(line.ljust(len(dashes)))
        out[cells[0]] = dict(zip(header, cells, strict=True))
    return out


def llm_args(url: str, *extra: str) -> list[str]:
    return ["--split", "validate", "--limit", "2", "--base-url", url, "-q", *extra]


@pytest.mark.docker
def test_generator_llm_on_every_dataset_with_cost_split(
    server: dict[str, Any], oracle: Any, tmp_path: Path, docker_ready: None, capsys: Any
) -> None:
    problems = [p for name in DATASETS for p in load(name, "validate", limit=2)]
    script = oracle(problems)
    server["script"] = script
    out = tmp_path / "run"
    args = ["run", "all", "--generator", "llm", "--generator-model", "gpt-4o", "--executor-model"]
    args += ["gpt-4o-mini", "--k", "2", "--concurrency", "2", "--out", str(out)]
    assert main(args + llm_args(server["url"])) == 0
    text = capsys.readouterr().out

    assert script.generator_calls == 6 * 2 * 2  # k=2 workflows for each of 2 problems per dataset
    requests = server["server"].requests
    gen = [r for r in requests if GENERATOR_MARK in last_user_message(r)]
    assert {r["model"] for r in gen} == {"gpt-4o"} and all(r["stop"] == ["</graph>"] for r in gen)
    assert {r["model"] for r in requests if r not in gen} == {"gpt-4o-mini"}
    summary = json.loads((out / "summary.json").read_text())
    rows = table_rows(text)
    for name in DATASETS:
        recs = records(out, name)
        assert len(recs) == 4 and all(r["score"] == 1.0 for r in recs), [r.get("error") for r in recs]
        runs = [r["runs"][0] for r in recs]
        assert all(r["metadata"]["workflow_status"] == "ok" for r in runs)
        assert all(r["metadata"]["cost_split"]["generator"] > 0 for r in runs)  # gpt-4o is priced
        assert all(r["metadata"]["cost_split"]["executor"] > 0 for r in runs)
        assert all(r["metadata"]["token_split"]["generator"] > 0 for r in runs)
        assert all(r["cost"] == pytest.approx(sum(r["metadata"]["cost_split"].values())) for r in runs)
        s = summary[name]
        assert s["metric"] == default_metric(name) and s["score"]["value"] == 1.0  # numeric, equiv, official
        assert s["generator_cost"] > 0 and s["executor_cost"] > 0
        assert s["cost"] == pytest.approx(s["generator_cost"] + s["executor_cost"])
        assert s["tokens"] == s["generator_tokens"] + s["executor_tokens"] > 0
        row = rows[name]
        assert row["metric"] == default_metric(name) and row["k x rep"] == "2x1"
        assert row["gen $"] == f"{s['generator_cost']:.4f}" and row["exec $"] == f"{s['executor_cost']:.4f}"
        assert row["gen tok"] == str(s["generator_tokens"]) and row["exec tok"] == str(s["executor_tokens"])
    run_json = json.loads((out / "run.json").read_text())
    assert run_json["system"] == "llm:gpt-4o" and run_json["executor_model"] == "gpt-4o-mini"
    assert run_json["generator_model"] == "gpt-4o" and "judge_model" not in run_json
    assert run_json["scoring"] == {name: default_metric(name) for name in DATASETS}
    assert "generator gpt-4o" in text and "executor gpt-4o-mini" in text

    assert main(["report", str(out), "--no-plot"]) == 0  # the report shows the same split
    report = capsys.readouterr().out
    block = report.split("gsm8k\n", 1)[1].split("\n\n", 1)[0]
    assert "gen $" in block and "exec $" in block
    assert f"{summary['gsm8k']['generator_cost']:.4f}" in block and "numeric" in block


@pytest.mark.docker
def test_resumed_generator_run_does_not_regenerate(
    server: dict[str, Any], oracle: Any, tmp_path: Path, docker_ready: None
) -> None:
    problems = load("gsm8k", "validate", limit=2)
    script = oracle(problems)
    server["script"] = script
    out = tmp_path / "run"
    args = ["run", "gsm8k", "--generator", "llm", "--generator-model", "gpt-4o", "--k", "2"]
    args += ["--concurrency", "2", "--out", str(out), *llm_args(server["url"])]
    assert main(args) == 0
    first = json.loads((out / "summary.json").read_text())["gsm8k"]
    assert script.generator_calls == 4 and first["generator_cost"] > 0
    lines = (out / "gsm8k.jsonl").read_text().splitlines(keepends=True)
    (out / "gsm8k.jsonl").write_text(lines[0] + lines[1][:40])  # killed mid-write after one record
    sent = server["server"].chat_requests

    assert main(args) == 0
    assert script.generator_calls == 4  # the saved workflows were reused, none generated again
    again = records(out, "gsm8k")
    assert len(again) == 4 and all(r["score"] == 1.0 for r in again)
    assert not any(GENERATOR_MARK in last_user_message(r) for r in server["server"].requests[sent:])
    second = json.loads((out / "summary.json").read_text())["gsm8k"]
    # the redone samples are still charged what generating their workflows cost (saved beside them)
    assert second["generator_cost"] == pytest.approx(first["generator_cost"])
    assert second["generator_tokens"] == first["generator_tokens"]


def test_judge_on_math_drop_hotpotqa(
    server: dict[str, Any], oracle: Any, tmp_path: Path, capsys: Any
) -> None:
    names = ["math", "drop", "hotpotqa"]
    problems = {name: load(name, "validate", limit=2) for name in names}
    wrong = {ps[1].id for ps in problems.values()}  # the judge rejects the second problem of each
    script = oracle(
        [p for ps in problems.values() for p in ps], judge=lambda p: "0" if p.id in wrong else "1"
    )
    server["script"] = script
    out = tmp_path / "judged"
    args = ["run", *names, "--solver", "cot", "--executor-model", "gpt-4o-mini", "--judge", "--out", str(out)]
    assert main(args + llm_args(server["url"])) == 0
    text = capsys.readouterr().out
    assert script.judge_calls == 6
    summary = json.loads((out / "summary.json").read_text())
    rows = table_rows(text)
    for name in names:
        s = summary[name]
        assert s["metric"] == "llm-judge" and rows[name]["metric"] == "llm-judge"
        assert s["score"]["value"] == 0.5 and s["pass_at"]["pass@1"]["value"] == 0.5
        assert s["scoring_cost"] > 0 and s["scoring_tokens"] > 0  # the judge ran on gpt-4o-mini
        assert s["executor_cost"] == pytest.approx(s["cost"])  # ...and is not the solver's cost
        for rec in records(out, name):
            run = rec["runs"][0]
            assert run["metrics"]["judge"] == rec["score"] and "official" in run["metrics"]
            assert run["scoring_cost"] > 0 and run["cost"] == pytest.approx(
                run["metadata"]["cost_split"]["executor"]
            )
    assert "f1" in records(out, "drop")[0]["runs"][0]["metrics"]  # official EM/F1 kept beside
    assert rows["drop"]["F1"] != "-" and rows["hotpotqa"]["EM"] != "-"
    assert "llm-judge scoring (math, drop, hotpotqa): $" in text and "not in gen $/exec $" in text
    judged = [r for r in server["server"].requests if JUDGE_MARK in last_user_message(r)]
    assert {r["model"] for r in judged} == {"gpt-4o-mini"}  # the executor's model by default
    run_json = json.loads((out / "run.json").read_text())
    assert run_json["scoring"] == dict.fromkeys(names, "llm-judge")
    assert run_json["judge_model"] == "gpt-4o-mini"

    # the same folder cannot be resumed with the official metric or another judge
    assert main(["run", "math", "--solver", "cot", "--out", str(out), *llm_args(server["url"])]) == 2
    assert "scored math with the llm-judge metric, not equiv" in capsys.readouterr().err
    assert main(args + llm_args(server["url"], "--judge-model", "gpt-4o")) == 2
    assert "judge_model='gpt-4o-mini', not 'gpt-4o'" in capsys.readouterr().err

    # --judge-model: the judge runs on that model; the report labels the metric
    before = len(server["server"].requests)
    out2 = tmp_path / "judged-4o"
    args2 = ["run", "hotpotqa", "--solver", "cot", "--judge", "--judge-model", "gpt-4o", "--out", str(out2)]
    assert main(args2 + llm_args(server["url"])) == 0
    new = server["server"].requests[before:]
    assert {r["model"] for r in new if JUDGE_MARK in last_user_message(r)} == {"gpt-4o"}
    capsys.readouterr()
    assert main(["report", str(out), str(out2), "--no-plot"]) == 0
    report = capsys.readouterr().out
    assert report.count("llm-judge") >= 4 and f"{out2}: llm-judge scoring (hotpotqa)" in report


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--generator", "llm", "--k", "8"], "error: no generator endpoint: set SF_GENERATOR_API_KEY"),
        (["--solver", "cot"], "error: no executor endpoint: set SF_EXECUTOR_API_KEY"),
        (["--generator", "template:cot"], "error: no executor endpoint"),
        (["--judge", "--solver", "canonical"], "error: no executor endpoint"),
        (["--solver", "cot", "--generator", "llm"], "are mutually exclusive"),
        (["--generator-model", "m"], "--generator-model needs --generator llm"),
        (["--generator", "llm:m"], "--generator llm takes no argument"),
        (["--generator", "gpt"], "unknown generator 'gpt'"),
    ],
)
def test_llm_flag_errors_are_one_line_exit_2(
    args: list[str], message: str, no_llm_env: None, tmp_path: Path, capsys: Any
) -> None:
    assert main(["run", "math", "--out", str(tmp_path / "o"), *args]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and message in err[0], err
    if "endpoint" in message:
        assert "--base-url" in err[0] and "OPENAI_API_KEY" in err[0]
    assert not (tmp_path / "o").exists()  # refused before anything was written


def test_missing_key_from_the_command_line_has_no_traceback(run_cli: Any, tmp_path: Path) -> None:
    env = {
        k: "" for p in ("SF_EXECUTOR", "SF_GENERATOR", "OPENAI") for k in (f"{p}_API_KEY", f"{p}_BASE_URL")
    }
    proc = run_cli(
        "run", "gsm8k", "--generator", "llm", "--generator-model", "M", "--executor-model", "M", "--k", "8",
        "--out", str(tmp_path / "o"), env=env, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: no generator endpoint")
    assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_import_sf_bench_and_help_stay_light() -> None:
    code = (
        "import sys, sf_bench, sf_bench.harness, sf_bench.report, sf_bench.systems\n"
        "from sf_bench.cli import main\n"
        "try:\n    main(['run', '--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = ('sf_workflows', 'openai', 'sf_sandbox.sandbox')\n"
        "print('LOADED', sorted(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith("LOADED []"), out
    assert "--generator" in out and "--judge" in out and "--base-url" in out


@pytest.mark.docker
def test_harness_closes_the_sandbox_and_clients_a_system_owns(
    server: dict[str, Any], oracle: Any, docker_ready: None
) -> None:
    from sf_bench.systems import resolve_generator
    from sf_bench.systems.baselines import Endpoints

    problems = load("gsm8k", "validate", limit=1)
    server["script"] = oracle(problems)
    system = resolve_generator("template:cot", Endpoints(base_url=server["url"]))
    executor = system.executor

    async def go() -> Any:
        summaries = await Harness(system, concurrency=1).arun({"gsm8k": problems})
        return summaries, system.runner._sandbox, executor.cache, executor._loops

    summaries, sandbox, cache, loops = asyncio.run(go())
    assert summaries["gsm8k"].score.value == 1.0
    assert sandbox is None and cache is None and not loops  # closed inside the run's event loop
    from sf_bench.errors import BenchError

    with pytest.raises(BenchError, match="runner was closed"):
        asyncio.run(system.answer(problems[0], 0))


def test_harness_close_hook_and_scorer_override(make_problem: Any) -> None:
    from sf_bench.types import Score

    events: list[str] = []

    class Owning:
        name = "owning"

        async def prepare(self, problems: Any, k: int, state_dir: Any) -> None:
            pass

        async def answer(self, problem: Any, sample: int) -> str:
            return "4"

        async def aclose(self) -> None:
            events.append("aclose")

    class SyncOwning(Owning):
        aclose = None  # type: ignore[assignment]

        def close(self) -> None:
            events.append("close")

    async def judge(problem: Any, answer: str) -> Score:
        return Score(value=0.0, metrics={"judge": 0.0}, cost=0.5, tokens=7)

    judge.metric = "my-judge"  # type: ignore[attr-defined]
    problems = {
        "gsm8k": [make_problem("gsm8k", "p", answer="4")],
        "math": [make_problem("math", "q", answer="4")],
    }
    out = Harness(Owning(), scorers={"gsm8k": judge}).run(problems)
    assert events == ["aclose"]
    assert out["gsm8k"].metric == "my-judge" and out["gsm8k"].score.value == 0.0
    assert out["gsm8k"].scoring_cost == 0.5 and out["gsm8k"].scoring_tokens == 7 and out["gsm8k"].cost == 0
    assert out["math"].metric == "equiv" and out["math"].score.value == 1.0
    Harness(SyncOwning()).run({"gsm8k": problems["gsm8k"]})
    assert events == ["aclose", "close"]
    Harness(Owning(), close_system=False).run({"gsm8k": problems["gsm8k"]})
    assert events == ["aclose", "close"]
