"""The ``scoreflow`` profile's sf-workflows side.

Official strings, operator style, filters, ScoreFlow's call forms, and the validator's
module-path check.

ScoreFlow publishes no license, so its text is not kept here: tests that compare against the
official strings read them from a checkout named by ``SF_SCOREFLOW_SOURCE`` (they are skipped
without one, and fail instead under ``SF_REQUIRE_SCOREFLOW=1``, like ``SF_REQUIRE_DOCKER``).
Everything else runs on a made-up checkout (``write_fake_scoreflow_checkout``).
"""

from __future__ import annotations

import asyncio
import os
import re
import runpy
from pathlib import Path
from typing import Any

import pytest

from sf_workflows import Task, validate_workflow
from sf_workflows import operators as op
from sf_workflows.errors import WorkflowConfigError
from sf_workflows.generator import build_generator_prompt
from sf_workflows.generator import scoreflow as sf
from sf_workflows.generator.filters import FilterRules, RejectionReason, check_generated
from sf_workflows.generator.validate import ALLOWED_IMPORTS
from sf_workflows.operators import RunContext
from sf_workflows.operators._style import OURS, SCOREFLOW_SYSTEM_MESSAGE, OperatorStyle, xml_format_note
from sf_workflows.run import run_workflow, sandbox_code_runner
from sf_workflows.testing import (
    FAKE_SCOREFLOW_TEMPLATE,
    Script,
    ScriptedLLM,
    answer_script,
    run_in_context,
    write_fake_scoreflow_checkout,
)

DIRS = sf.DATASET_DIRS

TASKS = {
    "math": Task(id="m", task_type="math", prompt="Compute $1+1$.", dataset="math"),
    "gsm8k": Task(id="g", task_type="math", prompt="Ann has 2 apples. How many?", dataset="gsm8k"),
    "drop": Task(
        id="d",
        task_type="qa",
        prompt="Passage: Ann ran.\nQuestion: Who ran?\nAnswer:",
        question="Who ran?",
        dataset="drop",
    ),
    "hotpotqa": Task(
        id="h", task_type="qa", prompt="Context...\nQuestion: Who?", question="Who?", dataset="hotpotqa"
    ),
    "humaneval": Task(
        id="c", task_type="code", prompt="def add(a, b):\n    ", entry_point="add", dataset="humaneval"
    ),
    "mbpp": Task(id="p", task_type="code", prompt="Write a function add.", entry_point="add", dataset="mbpp"),
}


@pytest.fixture(scope="session")
def checkout() -> Path:
    """The user's Gen-Verse/ScoreFlow checkout (``SF_SCOREFLOW_SOURCE``)."""
    raw = os.environ.get(sf.ENV_VAR)
    if not raw:
        if os.environ.get("SF_REQUIRE_SCOREFLOW") == "1":
            pytest.fail(f"SF_REQUIRE_SCOREFLOW=1 but {sf.ENV_VAR} names no ScoreFlow checkout")
        pytest.skip(f"set {sf.ENV_VAR} to a Gen-Verse/ScoreFlow checkout to compare with the official text")
    return Path(raw)


@pytest.fixture
def fake(tmp_path: Path) -> sf.OfficialStrings:
    """Made-up strings in ScoreFlow's layout, loaded without the digest check."""
    return sf.load_official("math", write_fake_scoreflow_checkout(tmp_path / "sf"), verify=False)


def _official_module(checkout: Path, dataset: str, name: str) -> dict[str, Any]:
    """The official file's globals, by running it (these files are plain literals)."""
    return runpy.run_path(str(checkout / "ScoreFlow" / "scripts" / DIRS[dataset] / name))


run_op = run_in_context


# ---- official strings, byte for byte -------------------------------------------------------


@pytest.mark.parametrize("dataset", list(DIRS))
def test_generator_prompt_is_scoreflows_byte_for_byte(checkout: Path, dataset: str) -> None:
    conditions = _official_module(checkout, dataset, "conditions.py")
    task = TASKS[dataset]
    if dataset == "drop":  # drop.py get_graph_input_text
        text = re.search(r"Question:(.*?)Answer:", task.prompt, re.DOTALL).group(1).strip()
    else:
        text = task.generator_text
    official = sf.load_official(dataset, checkout)  # verify=True: the pinned commit's digests hold
    prompt = build_generator_prompt(task, official=official)
    assert prompt == conditions["START_PORMPT"] + text + conditions["END_PROMPT"]
    assert official.time_limit == conditions["TIME_LIMIT"]
    assert official.banned == tuple(conditions["NO_EXCEPTION_LIST"])


@pytest.mark.parametrize("dataset", list(DIRS))
def test_operator_style_carries_the_official_operator_prompts(checkout: Path, dataset: str) -> None:
    prompts = {
        k: v
        for k, v in _official_module(checkout, dataset, "op_prompt.py").items()
        if isinstance(v, str) and not k.startswith("__")
    }
    style = sf.operator_style(sf.load_official(dataset, checkout))
    assert dict(style.prompts) == prompts
    assert style.system_message == "You are a helpful assistant."
    assert style.test_loop == {"humaneval": 10, "mbpp": 6}.get(dataset, 3)
    if dataset in ("math", "gsm8k"):
        assert style.programmer_timeout == 30


def test_scoreflow_sc_ensemble_sends_the_official_prompt(checkout: Path) -> None:
    style = sf.operator_style(sf.load_official("math", checkout))
    official = _official_module(checkout, "math", "op_prompt.py")["SC_ENSEMBLE_PROMPT"]
    llm = ScriptedLLM("<thought>t</thought><solution_letter>B</solution_letter>")
    ens = op.ScEnsemble(llm, None, "P?")
    assert run_op(RunContext(style=style), lambda: ens(solutions=["x", "y"])) == "y"
    expected = official.format(problem="P?", solutions="A: \nx\n\n\nB: \ny\n\n\n")
    assert llm.requests[0]["messages"] == [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": expected + xml_format_note(("thought", "solution_letter"))},
    ]


def test_load_checks_the_pinned_digests(tmp_path: Path) -> None:
    root = write_fake_scoreflow_checkout(tmp_path / "sf")
    with pytest.raises(WorkflowConfigError, match=r"differs from ScoreFlow commit 2492563838f7 in MATH/"):
        sf.load_official("math", root)
    loaded = sf.load_official("math", root, verify=False)
    assert loaded.sim_threshold == 0.75 and loaded.time_limit == 120 and loaded.test_loop == 10


def test_missing_checkout_says_why_and_how(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(sf.ENV_VAR, raising=False)
    with pytest.raises(WorkflowConfigError, match=r"no license.*git clone.*SF_SCOREFLOW_SOURCE"):
        sf.load_official("math")
    with pytest.raises(WorkflowConfigError, match="not a ScoreFlow checkout"):
        sf.load_official("math", tmp_path)
    with pytest.raises(WorkflowConfigError, match="no prompts for dataset 'cifar'"):
        sf.load_official("cifar", tmp_path)


def test_generator_prompt_assembles_start_task_end(fake: sf.OfficialStrings) -> None:
    prompt = build_generator_prompt(TASKS["math"], official=fake)
    assert prompt == fake.start_prompt + "Compute $1+1$." + fake.end_prompt
    with pytest.raises(WorkflowConfigError, match="fixes its operators"):
        build_generator_prompt(TASKS["math"], ["Custom"], official=fake)


def test_extraction_prompt_fills_question_and_context(fake: sf.OfficialStrings) -> None:
    assert sf.extraction_prompt(fake, "Q?", "long answer") == "[extract] Q? || long answer"


# ---- operators in the scoreflow style ----------------------------------------------------------


@pytest.fixture
def style(fake: sf.OfficialStrings) -> OperatorStyle:
    return sf.operator_style(fake)


def _system_then(user: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": SCOREFLOW_SYSTEM_MESSAGE}, {"role": "user", "content": user}]


def test_custom_concatenates_without_separator_and_sends_the_system_message(style: OperatorStyle) -> None:
    llm = ScriptedLLM("r")
    run_op(RunContext(style=style), lambda: op.Custom(llm, "P")(instruction="Think. "))
    code = op.Custom(llm, {"prompt": "def f():", "entry_point": "f"})
    run_op(RunContext(style=style, task_type="code"), lambda: code(instruction="Go. "))
    run_op(RunContext(), lambda: op.Custom(llm, "P")(instruction="Think."))
    assert [r["messages"] for r in llm.requests] == [
        _system_then("Think. P"),
        _system_then("Go. You have the following task: def f():"),
        [{"role": "user", "content": "Think.\n\nP"}],  # ours: unchanged
    ]


def test_scoreflow_ensemble_review_and_answer_generate_follow_its_rules(style: OperatorStyle) -> None:
    llm = ScriptedLLM(
        ["<solution_letter>Z</solution_letter>", "no tags", "<thought>t</thought><answer>a</answer>"]
    )
    ctx = RunContext(style=style)
    with pytest.raises(KeyError, match="chose 'Z'"):
        run_op(ctx, lambda: op.ScEnsemble(llm, "P")(solutions=["only"]))  # one solution: still asks
    assert run_op(ctx, lambda: op.Review(llm, "P")(pre_solution="s")) == ""  # missing tag -> ""
    assert run_op(ctx, lambda: op.AnswerGenerate(llm, "P")()) == "t\n So we have the final results: a"
    users = [r["messages"][1]["content"] for r in llm.requests]
    assert users == [
        "[ens] P || A: \nonly\n\n\n [/ens]" + xml_format_note(("thought", "solution_letter")),
        "[rev] P || s [/rev]" + xml_format_note(("thought", "revised_solution")),
        "[ans] P [/ans]" + xml_format_note(("thought", "answer")),
    ]


def test_style_round_trips_through_json(style: OperatorStyle) -> None:
    assert OperatorStyle.from_json(style.to_json()) == style
    assert OperatorStyle.from_json(None) is OURS


@pytest.mark.docker
def test_programmer_accepts_a_list_analysis_in_both_styles(sandbox: Any, style: OperatorStyle) -> None:
    llm = ScriptedLLM(answer_script("42"))
    runner = sandbox_code_runner(sandbox)
    prog = op.Programmer(llm, "P")
    ours = run_op(RunContext(run_code=runner, code_timeout=5), lambda: prog(analysis=["a", 1]))
    assert "Analysis:\n['a', 1]" in llm.requests[-1]["messages"][-1]["content"]
    assert ours.endswith("the output of solve() is: 42")
    llm.responder = Script(default="```python\ndef solve():\n    return 6 * 7\n```")
    theirs = run_op(RunContext(run_code=runner, code_timeout=5, style=style), lambda: prog(analysis=[1, 2]))
    assert llm.requests[-1]["messages"][-1]["content"] == "[prog] P || [1, 2] ||  [/prog]"
    assert theirs == (
        "After executing the following code written by llm agent.\n"
        "def solve():\n    return 6 * 7\n\nWe have the following output: 42"
    )


@pytest.mark.docker
def test_test_honours_test_loop_and_scoreflow_regenerates(sandbox: Any, style: OperatorStyle) -> None:
    failing = "def add(a, b):\n    return 0\n"
    problem = {"prompt": "def add(a, b):", "entry_point": "add"}
    runner = sandbox_code_runner(sandbox)
    tests = ("assert add(1, 2) == 3",)
    llm = ScriptedLLM(Script(default=f"```python\n{failing}```"))
    ctx = RunContext(run_code=runner, code_timeout=5, public_tests=tests, task_type="code")
    assert run_op(ctx, lambda: op.Test(llm, problem)(solution=failing, test_loop=1)) == failing
    assert len(llm.requests) == 1  # ours: one repair round, as asked
    llm.requests.clear()
    sf_ctx = RunContext(run_code=runner, code_timeout=5, public_tests=tests, task_type="code", style=style)
    run_op(sf_ctx, lambda: op.Test(llm, problem)(solution=failing, test_loop=2))
    users = [r["messages"][1]["content"] for r in llm.requests]
    assert len(users) == 3 and users[0].startswith("[refl] You have the following task: def add(a, b):")
    assert "executed successfully" in users[0] and "assert add(1, 2) == 3" in users[0]
    assert users[2] == (  # after the rounds: regenerate with code_generate, as ScoreFlow does
        "Can you analyze this problem step by step and generate the code?"
        "You have the following task: def add(a, b): [code-note]"
    )
    with pytest.raises(TypeError, match="test_loop' must be an int"):
        run_op(ctx, lambda: op.Test(llm, problem)(solution=failing, test_loop="3"))


# ---- the full ScoreFlow file form --------------------------------------------------------------

SCOREFLOW_FILE = (
    "import asyncio\nfrom typing import Literal\nimport ScoreFlow.scripts.MATH.operator as operator\n"
    "from metagpt.provider.llm_provider_registry import create_llm_instance as create\n\n"
    "class Workflow:\n    def __init__(\n        self,\n        config,\n        problem\n    ) -> None:\n"
    "        self.problem = problem\n        self.config = create(config)\n        self.gid = None\n"
    "        self.custom = operator.Custom(self.config, self.gid, self.problem)\n\n"
    "    async def run_workflow(self):\n"
    '        solution = await self.custom(instruction="Solve.")\n        return solution\n\n'
    "    async def __call__(self):\n        TIMEOUT = 60\n"
    "        return await asyncio.wait_for(self.run_workflow(), timeout=TIMEOUT)"
)


def test_scoreflow_file_form_validates() -> None:
    assert validate_workflow(SCOREFLOW_FILE, "math").ok, validate_workflow(SCOREFLOW_FILE, "math").message
    other = SCOREFLOW_FILE.replace("import asyncio\n", "import os\n")
    assert "import of 'os' is not allowed" in validate_workflow(other, "math").message


@pytest.mark.docker
def test_scoreflow_file_form_runs_in_the_sandbox(sandbox: Any) -> None:
    llm = ScriptedLLM("The answer is 2")
    outcome = asyncio.run(run_workflow(SCOREFLOW_FILE, TASKS["math"], llm, sandbox, timeout=30))
    assert outcome.ok, outcome.error
    assert outcome.answer == "The answer is 2"


# ---- validity filters -------------------------------------------------------------------------


def test_filters_reject_template_copies_and_banned_substrings(fake: sf.OfficialStrings) -> None:
    rules = sf.filter_rules(fake)
    copy = check_generated(f"<graph>\n{FAKE_SCOREFLOW_TEMPLATE}\n</graph>", rules)
    assert copy is not None and copy.reason is RejectionReason.TOO_SIMILAR
    assert "1.000 similar" in copy.detail
    changed = FAKE_SCOREFLOW_TEMPLATE.replace(
        'solution = await self.custom(instruction="Solve it step by step.")',
        "a = await self.custom(instruction='Plan first, then compute.')\n"
        "        b = await self.custom(instruction=a)\n        solution = b",
    )
    assert check_generated(f"<graph>{changed}</graph>", rules) is None
    banned = check_generated(
        f"<graph>{changed.replace('solution = b', 'solution = str(int(b))')}</graph>", rules
    )
    assert banned is not None and banned.reason is RejectionReason.BANNED_SUBSTRING
    assert check_generated(changed, rules).reason is RejectionReason.NO_GRAPH
    assert check_generated(f"<graph>{FAKE_SCOREFLOW_TEMPLATE}</graph>", FilterRules()) is None  # ours: off


@pytest.mark.parametrize(("dataset", "rejected"), [("math", True), ("gsm8k", True), ("humaneval", False)])
def test_official_thresholds_reject_the_official_template(
    checkout: Path, dataset: str, rejected: bool
) -> None:
    official = sf.load_official(dataset, checkout)
    verdict = check_generated(f"<graph>\n{official.template}\n</graph>", sf.filter_rules(official))
    assert (verdict is not None) is rejected  # HumanEval's sim_threshold is 1.1: never


# ---- validator: module paths, and the prompt's import list ------------------------------------


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("x = asyncio.base_events.os.getcwd()", "asyncio.base_events.os reaches module 'os'"),
        ("x = asyncio.subprocess.subprocess", "reaches module 'subprocess'"),
    ],
)
def test_validator_rejects_paths_to_modules_outside_the_allowlist(line: str, message: str) -> None:
    source = SCOREFLOW_FILE.replace(
        '        solution = await self.custom(instruction="Solve.")',
        f"        {line}\n" + '        solution = await self.custom(instruction="Solve.")',
    )
    report = validate_workflow(source, "math")
    assert not report.ok and message in report.message
    imported = "from asyncio import base_events\n" + SCOREFLOW_FILE
    assert validate_workflow(imported, "math").ok  # base_events itself is asyncio's
    sneaky = "from json import decoder\nfrom re import enum\n" + SCOREFLOW_FILE
    assert "from re import enum reaches module 'enum'" in validate_workflow(sneaky, "math").message


def test_prompt_names_exactly_the_validators_imports() -> None:
    prompt = build_generator_prompt(TASKS["math"])
    sentence = re.search(r"do not import other modules than ([^.]+)\.", prompt.replace("\n", " ")).group(1)
    named = set(re.split(r",\s*|\s+or\s+", sentence.strip()))
    assert named == set(ALLOWED_IMPORTS)


def test_validator_accepts_scoreflows_test_loop_call() -> None:
    source = (
        "class Workflow:\n    def __init__(self, config, problem):\n        self.problem = problem\n"
        "        self.llm = create(config)\n"
        "        self.code_generate = operator.CustomCodeGenerate(self.llm, self.problem)\n"
        "        self.test = operator.Test(self.llm, self.problem)\n\n"
        "    async def run_workflow(self):\n"
        '        s = await self.code_generate(instruction="Write it.")\n'
        "        s = await self.test(solution=s, test_loop=3)\n        return s\n"
    )
    report = validate_workflow(source, "code")
    assert report.ok, report.message
    bad = validate_workflow(source.replace("test_loop=3", "loops=3"), "code")
    assert "unexpected keyword argument 'loops'" in bad.message
