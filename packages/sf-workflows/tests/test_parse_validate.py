"""Parser and validator: every rule, and messages a generator can act on."""

from __future__ import annotations

import pytest

from sf_workflows import TEMPLATE_NAMES, WorkflowParseError, get_template, parse_workflow, validate_workflow
from sf_workflows.testing import custom_workflow

GOOD = """class Workflow:
    def __init__(self, config, problem) -> None:
        self.problem = problem
        self.llm = create(config)
        self.custom = operator.Custom(self.llm, self.problem)

    async def run_workflow(self):
        solution = await self.custom(instruction="Think step by step.")
        return solution
"""


_with_body = custom_workflow


@pytest.mark.parametrize("name", TEMPLATE_NAMES)
@pytest.mark.parametrize("task_type", ["code", "math", "qa"])
def test_shipped_templates_are_valid(name: str, task_type: str) -> None:
    report = validate_workflow(get_template(name, task_type), task_type)
    assert report.ok, report.message
    assert report.operators_used


def test_good_workflow_reports_operators() -> None:
    report = validate_workflow(GOOD, "math")
    assert report.ok and report.operators_used == ("Custom",) and report.message == ""


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("class Workflow(:\n", "line 1: syntax error"),
        ("x = 1\n", "must define class Workflow"),
        ("import os\n" + GOOD, "import of 'os' is not allowed; workflows may import only"),
        ("import socket\n" + GOOD, "import of 'socket' is not allowed"),
        ("from subprocess import run\n" + GOOD, "import of 'subprocess' is not allowed"),
        ("import operator\n" + GOOD, "do not import operator or create"),
        (
            "from metagpt.provider import create_llm_instance as create\n" + GOOD,
            "do not import operator or create",
        ),
        (
            _with_body('return await self.custom(input="x", instruction="y")'),
            "self.custom(...) (Custom): got an unexpected keyword argument 'input'; "
            "call format: custom(instruction: str) -> str",
        ),
        (_with_body("return await self.custom()"), "missing a required argument: 'instruction'"),
        (_with_body('return await self.custom("a", "b")'), "too many positional arguments"),
        (
            _with_body("return await self.answer_generate()"),
            "self.answer_generate(...) is called but never created",
        ),
        (
            _with_body('return await self.custom(instruction="x")', "self.x = operator.Magic(self.llm)"),
            "unknown operator operator.Magic; available:",
        ),
        (
            _with_body(
                'return await self.custom(instruction="x")',
                "self.t = operator.Test(self.llm, self.problem)",
            ),
            "operator.Test is not available for this task",
        ),
        (
            _with_body(
                'return await self.custom(instruction="x")',
                "self.c = operator.Custom(self.llm, self.problem, 1, 2)",
            ),
            "operator.Custom(...) too many positional arguments",
        ),
        (GOOD.replace("async def run_workflow", "def run_workflow"), "run_workflow must be 'async def'"),
        (_with_body('await self.custom(instruction="x")'), "run_workflow must return the final answer"),
        (_with_body('return "42"'), "run_workflow calls no operator"),
        (_with_body('return eval("1")'), "eval() is not allowed"),
        (_with_body('return open("/etc/passwd").read()'), "open() is not allowed"),
        (_with_body("return self.__class__.__name__"), "attribute __class__ is not allowed"),
        (_with_body("return __builtins__"), "name __builtins__ is not allowed"),
        (
            GOOD + "print('hi')\n",
            "only imports, constants, functions and classes may appear outside class Workflow",
        ),
        (
            GOOD.replace("def __init__(self, config, problem)", "def __init__(self, problem)"),
            "Workflow.__init__ must take (self, config, problem)",
        ),
    ],
)
def test_each_rule_gives_a_specific_message(source: str, expected: str) -> None:
    report = validate_workflow(source, "math")
    assert not report.ok
    assert expected in report.message, report.message


def test_issue_lines_point_at_the_offending_statement() -> None:
    source = "import os\n" + GOOD
    (issue,) = validate_workflow(source, "math").issues
    assert issue.line == 1 and str(issue).startswith("line 1: ")


def test_explicit_operator_set_overrides_task_type() -> None:
    assert not validate_workflow(GOOD, "math", operators=["ScEnsemble"]).ok
    assert validate_workflow(GOOD, None, operators=["Custom"]).ok


PROBLEM = "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May."


def test_copying_problem_text_is_flagged() -> None:
    leaky = _with_body(
        'return await self.custom(instruction="Natalia sold clips to 48 of her friends in April, so")'
    )
    report = validate_workflow(leaky, "math", problem_text=PROBLEM)
    assert "copies the problem text" in report.message
    assert "operators already receive the problem" in report.message


def test_generic_instruction_is_not_a_leak() -> None:
    generic = _with_body(
        'return await self.custom(instruction="Solve how many clips were sold step by step.")'
    )
    assert validate_workflow(generic, "math", problem_text=PROBLEM).ok


def test_short_problem_copied_whole_is_flagged() -> None:
    leaky = _with_body('return await self.custom(instruction="Compute: what is two plus three?")')
    assert not validate_workflow(leaky, "math", problem_text="What is two plus three?").ok


def test_parse_graph_block_and_unclosed_graph() -> None:
    assert parse_workflow(f"Here:\n<graph>\n{GOOD}</graph>\nbye") == GOOD
    assert parse_workflow(f"<graph>\n{GOOD}") == GOOD  # generation stopped at </graph>


def test_parse_fenced_and_bare_and_fence_inside_graph() -> None:
    assert parse_workflow(f"Sure.\n```python\n{GOOD}```\n") == GOOD
    assert parse_workflow(f"<graph>\n```python\n{GOOD}```\n</graph>") == GOOD
    assert parse_workflow(f"Some text\n{GOOD}") == GOOD


def test_parse_without_workflow_says_what_is_expected() -> None:
    with pytest.raises(WorkflowParseError, match="inside <graph> and </graph>"):
        parse_workflow("I cannot help with that.")
    with pytest.raises(WorkflowParseError, match="does not define class Workflow"):
        parse_workflow("<graph>\nprint(1)\n</graph>")
