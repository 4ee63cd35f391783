"""``--generator aflow:PATH`` end to end, scored as the same workflows in ScoreFlow's shape.

AFlow's published graphs (and two written in their shape, see ``data/aflow/README.md``) run in
the real sandbox on a scripted OpenAI-compatible server and score exactly as the same workflows
written in ScoreFlow's shape do, on the same replies.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sf_bench.cli import main
from sf_bench.datasets import DATASETS, load
from sf_bench.systems.aflow import convert, find_graph
from sf_workflows.testing import ScriptedServer, answer_script, last_user_message

AFLOW = Path(__file__).parent / "data" / "aflow"


def _prompts(dataset: str, round_: int) -> dict[str, str]:
    namespace: dict[str, Any] = {}
    exec((AFLOW / dataset / "workflows" / f"round_{round_}" / "prompt.py").read_text(), namespace)
    return {k: v for k, v in namespace.items() if k.isupper()}


def scoreflow_shaped() -> dict[str, str]:
    """The same workflows as ``data/aflow``'s graphs, written in ScoreFlow's shape."""
    gsm8k = _prompts("GSM8K", 2)["SOLVE_PROMPT"]
    math = _prompts("MATH", 2)
    drop = _prompts("DROP", 3)["ANSWER_PROMPT"]
    mbpp = _prompts("MBPP", 3)["CODE_PROMPT"]
    head = "class Workflow:\n    def __init__(self, config, problem):\n        self.problem = problem\n"
    head += "        self.llm = create(config)\n"
    return {
        "humaneval": head
        + "        self.code_generate = operator.CustomCodeGenerate(self.llm, self.problem)\n"
        "    async def run_workflow(self):\n"
        '        return await self.code_generate(instruction="")\n',
        "hotpotqa": head + "        self.custom = operator.Custom(self.llm, self.problem)\n"
        "    async def run_workflow(self):\n"
        '        return await self.custom(instruction="")\n',
        "gsm8k": head + "        self.custom = operator.Custom(self.llm, self.problem)\n"
        "        self.sc_ensemble = operator.ScEnsemble(self.llm, self.problem)\n"
        "    async def run_workflow(self):\n"
        "        solutions = []\n"
        "        for _ in range(3):\n"
        f"            solutions.append(await self.custom(instruction={gsm8k!r}))\n"
        "        return await self.sc_ensemble(solutions=solutions)\n",
        "math": head + "        self.custom = operator.Custom(self.llm, self.problem)\n"
        "        self.sc_ensemble = operator.ScEnsemble(self.llm, self.problem)\n"
        "    async def run_workflow(self):\n"
        f"        first = await self.custom(instruction={math['INITIAL_SOLUTION_PROMPT']!r})\n"
        f"        second = await self.custom(instruction={math['REVISE_SOLUTION_PROMPT']!r} + first)\n"
        "        return await self.sc_ensemble(solutions=[first, second])\n",
        "drop": head + "        self.answer_generate = operator.AnswerGenerate(self.llm, self.problem)\n"
        "        self.custom = operator.Custom(self.llm, self.problem)\n"
        "        self.sc_ensemble = operator.ScEnsemble(self.llm, self.problem)\n"
        "        self.review = operator.Review(self.llm, self.problem)\n"
        "        self.revise = operator.Revise(self.llm, self.problem)\n"
        "        self.format = operator.Format(self.llm, self.problem)\n"
        "    async def run_workflow(self):\n"
        "        first = await self.answer_generate()\n"
        '        first = first.split("\\n So we have the final results: ")[-1]\n'
        f"        second = await self.custom(instruction={drop!r})\n"
        "        solution = await self.sc_ensemble(solutions=[first, second])\n"
        "        revised = await self.review(pre_solution=solution)\n"
        "        if revised.strip() != solution.strip():\n"
        '            feedback = "A revised solution:\\n" + revised\n'
        "            solution = await self.revise(solution=solution, feedback=feedback)\n"
        "        return await self.format(solution=solution)\n",
        "mbpp": head + "        self.code_generate = operator.CustomCodeGenerate(self.llm, self.problem)\n"
        "        self.sc_ensemble = operator.ScEnsemble(self.llm, self.problem)\n"
        "        self.test = operator.Test(self.llm, self.problem)\n"
        "    async def run_workflow(self):\n"
        f"        solutions = [await self.code_generate(instruction={mbpp!r}) for _ in range(2)]\n"
        "        best = await self.sc_ensemble(solutions=solutions)\n"
        "        return await self.test(solution=best)\n",
    }


def replies(problems: list[Any], oracle: Any) -> Callable[[dict[str, Any]], str]:
    """Gold answers in each operator's format, except for every second problem of a dataset.

    Every second problem gets wrong answers (code that fails), so that both 1s and 0s must agree.
    """
    right = oracle(problems)
    wrong = [p for i, p in enumerate(problems) if i % 2]

    def reply(request: dict[str, Any]) -> str:
        text = last_user_message(request)
        if any(p.prompt.strip()[:300] in text for p in wrong):
            return answer_script("-17 (wrong)", code="def nothing():\n    return None\n")(request)
        return right(request)

    return reply


def run(url: str, generator: str, out: Path) -> int:
    args = ["run", "all", "--split", "validate", "--limit", "2", "--generator", generator]
    return main([*args, "--out", str(out), "--base-url", url, "--executor-model", "m", "-q"])


@pytest.mark.docker
def test_aflow_graphs_score_as_their_scoreflow_twins(
    no_llm_env: None, oracle: Any, tmp_path: Path, docker_ready: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    problems = {name: load(name, "validate", limit=2) for name in DATASETS}
    flat = [p for ps in problems.values() for p in ps]
    twins = scoreflow_shaped()
    lines = [
        json.dumps({"id": p.id, "dataset": name, "workflow": twins[name]})
        for name in DATASETS
        for p in problems[name]
    ]
    twin_file = tmp_path / "twins.jsonl"
    twin_file.write_text("\n".join(lines) + "\n")
    with ScriptedServer(replies([p for ps in problems.values() for p in ps], oracle)) as server:
        monkeypatch.setenv("SF_WORKFLOWS_CACHE_DIR", str(tmp_path / "cache-aflow"))
        assert run(server.base_url, f"aflow:{AFLOW}", tmp_path / "aflow") == 0
        aflow_prompts = sorted(last_user_message(r) for r in server.requests)
        n = len(server.requests)
        monkeypatch.setenv("SF_WORKFLOWS_CACHE_DIR", str(tmp_path / "cache-twin"))
        assert run(server.base_url, f"file:{twin_file}", tmp_path / "twin") == 0
        twin_prompts = sorted(last_user_message(r) for r in server.requests[n:])
    for name in DATASETS:
        got = {}
        for which in ("aflow", "twin"):
            recs = [json.loads(x) for x in (tmp_path / which / f"{name}.jsonl").read_text().splitlines()]
            got[which] = {r["problem_id"]: r["score"] for r in recs}
            assert all(r["runs"][0]["metadata"]["workflow_status"] == "ok" for r in recs), (name, recs)
        assert got["aflow"] == got["twin"], name
        assert list(got["aflow"].values()) in ([1.0, 0.0], [0.0, 1.0]) or name in ("drop", "hotpotqa"), got
    assert len(flat) == 12
    # the same LLM calls, word for word, except MATH's revise step (AFlow passes the initial
    # solution in the input, after the problem; ScoreFlow's Custom can only append it to the
    # instruction, before the problem)
    math_revise = "reviewing and improving a solution"
    assert [p for p in aflow_prompts if math_revise not in p] == [
        p for p in twin_prompts if math_revise not in p
    ]
    assert sum(math_revise in p for p in aflow_prompts) == sum(math_revise in p for p in twin_prompts) == 2


def test_convert_keeps_the_graph_and_its_prompts() -> None:
    source = convert(find_graph(AFLOW, "math"), "math")
    compile(source, "<converted>", "exec")
    assert "class prompt_custom:" in source and "INITIAL_SOLUTION_PROMPT = " in source
    assert "self.custom = aflow_operator.Custom(self.llm)" in source
    assert "AFLOW_DATASET = 'MATH'" in source and "# Operators used: Custom, ScEnsemble." in source
    assert "import metagpt" not in source and "CostManager()" in source  # provided, not imported
    assert find_graph(AFLOW, "drop").parent.name == "round_3"  # the highest round of a workspace


@pytest.mark.parametrize(
    ("graph", "dataset", "message"),
    [
        (
            "import numpy\nclass Workflow:\n    async def __call__(self, problem): ...\n",
            "gsm8k",
            "imports numpy",
        ),
        (
            "class Workflow:\n    def __init__(self, n, c, d):\n        self.m = operator.MdEnsemble(c)\n"
            "    async def __call__(self, problem): ...\n",
            "gsm8k",
            "AFlow operator MdEnsemble is not supported",
        ),
        ("class Workflow:\n    async def __call__(self, problem): ...\n", "humaneval", "is a code dataset"),
        ("x = 1\n", "gsm8k", "defines no class Workflow"),
        (
            "import a.round_1.prompt as prompt_custom\n"
            "class Workflow:\n    async def __call__(self, p): ...\n",
            "gsm8k",
            "prompt.py does not exist",
        ),
        ("class Workflow(:\n", "gsm8k", "not valid Python"),
    ],
)
def test_unsupported_graphs_are_one_error_line(
    tmp_path: Path, capsys: Any, graph: str, dataset: str, message: str, no_llm_env: None
) -> None:
    (tmp_path / "graph.py").write_text(graph)
    code = main(["aflow-convert", str(tmp_path), "--dataset", dataset])
    err = capsys.readouterr().err
    assert (
        code == 2 and message in err and err.startswith("error: aflow adapter: ") and "Traceback" not in err
    )
    out = tmp_path / "o"
    args = ["run", dataset, "--split", "validate", "--limit", "1", "--generator", f"aflow:{tmp_path}"]
    assert main([*args, "--base-url", "http://127.0.0.1:9/v1", "--out", str(out), "-q"]) == 2
    assert message in capsys.readouterr().err and not (out / f"{dataset}.jsonl").exists()


PROGRAMMER_GRAPH = """
import re
from scripts.async_llm import create_llm_instance
import workspace.GSM8K.workflows.template.operator as operator


class Workflow:
    def __init__(self, name, llm_config, dataset):
        self.llm = create_llm_instance(llm_config)
        self.programmer = operator.Programmer(self.llm)

    async def __call__(self, problem: str):
        result = await self.programmer(problem=problem, analysis="None")
        direct = await self.llm("Answer with a number: " + problem)
        assert re.search(r"\\d", direct)
        return result["output"], self.llm.cost_manager.total_cost
"""


@pytest.mark.docker
def test_programmer_runs_its_code_in_the_sandbox(
    no_llm_env: None, oracle: Any, tmp_path: Path, docker_ready: None
) -> None:
    (tmp_path / "graph.py").write_text(PROGRAMMER_GRAPH)
    problems = load("gsm8k", "validate", limit=2)
    out = tmp_path / "out"
    with ScriptedServer(oracle(problems)) as server:
        args = ["run", "gsm8k", "--split", "validate", "--limit", "2", "--generator", f"aflow:{tmp_path}"]
        assert main([*args, "--out", str(out), "--base-url", server.base_url, "-q"]) == 0
    recs = [json.loads(x) for x in (out / "gsm8k.jsonl").read_text().splitlines()]
    assert {r["problem_id"]: r["answer"] for r in recs} == {p.id: p.answers[0] for p in problems}
    assert all(r["score"] == 1.0 and r["runs"][0]["metadata"]["llm_calls"] == 2 for r in recs)


def test_a_workspace_takes_the_best_round_of_results_json(tmp_path: Path) -> None:
    rounds = tmp_path / "GSM8K" / "workflows"
    for n in (1, 2, 3):
        (rounds / f"round_{n}").mkdir(parents=True)
        (rounds / f"round_{n}" / "graph.py").write_text("class Workflow: ...\n")
    assert find_graph(tmp_path, "gsm8k").parent.name == "round_3"  # no record: the highest round
    scores = [{"round": 1, "score": 0.8}, {"round": 2, "score": 0.9}, {"round": 2, "score": 0.93}]
    (rounds / "results.json").write_text(json.dumps([*scores, {"round": 3, "score": 0.85}]))
    assert find_graph(tmp_path, "gsm8k").parent.name == "round_2"  # AFlow's best, by mean score
    with pytest.raises(Exception, match="no graph.py for math"):
        find_graph(tmp_path, "math")
