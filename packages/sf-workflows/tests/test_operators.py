"""Every operator, driven through the real openai client against the scripted server.

LLM-only operators run in-process here; Programmer and Test execute code only in the sandbox
(through ``sandbox_code_runner`` here, and inside workflow jobs in test_run_sandbox.py).
"""

from __future__ import annotations

from typing import Any

import pytest

from sf_workflows import operators as op
from sf_workflows.operators import RunContext
from sf_workflows.operators._text import extract_code, extract_tag
from sf_workflows.run import sandbox_code_runner
from sf_workflows.testing import Script, ScriptedServer, last_user_message, run_in_context

run_op = run_in_context


def prompts(server: ScriptedServer) -> list[str]:
    return [last_user_message(r) for r in server.requests]


def test_custom_puts_instruction_before_problem(make_executor) -> None:
    with ScriptedServer(Script(default="four")) as srv:
        llm = make_executor(srv)
        custom = op.Custom(llm, "What is 2+2?")
        assert run_op(RunContext(), lambda: custom(instruction="Think step by step.")) == "four"
        assert run_op(RunContext(), lambda: custom(instruction="", temperature=0.7)) == "four"
    assert prompts(srv) == ["Think step by step.\n\nWhat is 2+2?", "What is 2+2?"]
    assert srv.requests[0]["temperature"] == 0.0 and srv.requests[1]["temperature"] == 0.7


def test_custom_rejects_a_non_string_instruction(make_executor, server: ScriptedServer) -> None:
    custom = op.Custom(make_executor(server), "p")
    with pytest.raises(TypeError, match="custom: argument 'instruction' must be a str, got int"):
        run_op(RunContext(), lambda: custom(instruction=3))
    assert server.chat_requests == 0


@pytest.mark.parametrize("args", [("P",), (None, "P")])
def test_constructor_accepts_scoreflow_forms(make_executor, server: ScriptedServer, args: tuple) -> None:
    llm = make_executor(server)
    assert op.Custom(llm, *args).problem == "P"  # (llm, problem) and MATH's (llm, gid, problem)
    assert op.Custom(llm, problem="P").problem == "P"
    with pytest.raises(TypeError, match="positional arguments"):
        op.Custom(llm, 1, 2, 3)


def test_operator_falls_back_to_the_runs_llm_and_problem(make_executor, server: ScriptedServer) -> None:
    ctx = RunContext(llm=make_executor(server), problem="Ctx problem")
    assert run_op(ctx, lambda: op.Custom()(instruction="Go.")) == "The answer is 42"
    assert prompts(server) == ["Go.\n\nCtx problem"]


def test_answer_generate_formats_thought_and_answer(make_executor) -> None:
    with ScriptedServer(
        Script(replies=["<thought>Ann's car is red.</thought><answer>red</answer>", "just red"])
    ) as srv:
        ag = op.AnswerGenerate(make_executor(srv, use_cache=False), "Q?")
        assert run_op(RunContext(), ag) == "Ann's car is red.\n So we have the final results: red"
        assert run_op(RunContext(), ag) == "just red\n So we have the final results: "
    assert "Q?" in prompts(srv)[0] and "<answer>" in prompts(srv)[0]


def test_code_generate_extracts_the_entry_point(make_executor) -> None:
    reply = (
        "Plan: loop.\n```python\ndef helper():\n    pass\n```\n"
        "Final:\n```python\ndef add(a, b):\n    return a + b\n\nprint(add(1, 2))\n```"
    )
    problem = {"prompt": "def add(a, b):\n    '''Sum.'''\n", "entry_point": "add"}
    with ScriptedServer(Script(default=reply)) as srv:
        gen = op.CustomCodeGenerate(make_executor(srv), problem)
        code = run_op(RunContext(task_type="code"), lambda: gen(instruction="Be careful."))
    assert code == "def add(a, b):\n    return a + b\n"
    text = prompts(srv)[0]
    assert (
        text.startswith("Be careful.\nYou have the following task:\ndef add(a, b):")
        and "defines `add`" in text
    )


def test_sc_ensemble_picks_the_letter(make_executor) -> None:
    with ScriptedServer(
        Script(
            replies=[
                "<thought>B and C agree</thought><solution_letter>b</solution_letter>",
                "<solution_letter>Z</solution_letter>",
            ]
        )
    ) as srv:
        sc = op.ScEnsemble(make_executor(srv, use_cache=False), "P")
        assert run_op(RunContext(), lambda: sc(solutions=["x=1", "x=2", "x=2"])) == "x=2"
        assert run_op(RunContext(), lambda: sc(solutions=["first", "second"])) == "first"  # invalid letter
        assert run_op(RunContext(), lambda: sc(solutions=["only"])) == "only"  # no call needed
    assert srv.chat_requests == 2
    assert "A:\nx=1" in prompts(srv)[0] and "C:\nx=2" in prompts(srv)[0]


@pytest.mark.parametrize(
    ("bad", "error"), [([], ValueError), ("abc", TypeError), (None, TypeError), (["s"] * 27, ValueError)]
)
def test_sc_ensemble_rejects_bad_solution_lists(
    make_executor, server: ScriptedServer, bad: Any, error: type
) -> None:
    sc = op.ScEnsemble(make_executor(server), "P")
    with pytest.raises(error, match="sc_ensemble"):
        run_op(RunContext(), lambda: sc(solutions=bad))


def test_review_returns_revised_or_previous(make_executor) -> None:
    with ScriptedServer(
        Script(
            replies=[
                "<review>step 2 is wrong</review><revised_solution>x = 5</revised_solution>",
                "no tags here",
            ]
        )
    ) as srv:
        review = op.Review(make_executor(srv, use_cache=False), "P")
        assert run_op(RunContext(), lambda: review(pre_solution="x = 4")) == "x = 5"
        assert run_op(RunContext(), lambda: review(pre_solution="x = 4")) == "x = 4"
    assert "x = 4" in prompts(srv)[0] and "P" in prompts(srv)[0]


def test_revise_uses_feedback_and_extracts_code_for_code_tasks(make_executor) -> None:
    fixed = "<solution>```python\ndef add(a, b):\n    return a + b\n```</solution>"
    with ScriptedServer(Script(replies=["<solution>better</solution>", fixed])) as srv:
        revise = op.Revise(
            make_executor(srv, use_cache=False), {"prompt": "def add(a, b):", "entry_point": "add"}
        )
        assert run_op(RunContext(), lambda: revise(solution="bad", feedback="fix it")) == "better"
        code = run_op(RunContext(task_type="code"), lambda: revise(solution="bad", feedback="fix it"))
    assert code == "def add(a, b):\n    return a + b\n"
    assert "fix it" in prompts(srv)[0]


def test_format_asks_for_the_bare_answer_and_skips_the_llm_for_code(make_executor) -> None:
    with ScriptedServer(Script(default="<answer>\\boxed{42}</answer>")) as srv:
        fmt = op.Format(make_executor(srv), "P")
        assert run_op(RunContext(task_type="math"), lambda: fmt(solution="... so 42")) == "\\boxed{42}"
        code = run_op(
            RunContext(task_type="code"), lambda: fmt(solution="```python\ndef f():\n    return 1\n```")
        )
    assert code == "def f():\n    return 1\n" and srv.chat_requests == 1
    assert "\\boxed" in prompts(srv)[0]


def test_programmer_and_test_refuse_without_a_sandboxed_runner(make_executor, server: ScriptedServer) -> None:
    with pytest.raises(RuntimeError, match="no sandboxed code runner"):
        run_op(RunContext(), lambda: op.Programmer(make_executor(server), "P")(analysis="a"))
    with pytest.raises(RuntimeError, match="no sandboxed code runner"):
        run_op(
            RunContext(public_tests=("assert True",)),
            lambda: op.Test(make_executor(server), "P")(solution="x"),
        )


def test_test_without_public_tests_returns_the_solution_unchanged(
    make_executor, server: ScriptedServer
) -> None:
    assert run_op(RunContext(), lambda: op.Test(make_executor(server), "P")(solution="code")) == "code"
    assert server.chat_requests == 0


@pytest.mark.docker
def test_programmer_runs_code_in_the_sandbox_and_retries_on_error(make_executor, sandbox: Any) -> None:
    replies = [
        "```python\ndef solve():\n    return 1 / 0\n```",
        "```python\ndef solve():\n    return 6 * 7\n```",
    ]
    with ScriptedServer(Script(replies=replies)) as srv:
        prog = op.Programmer(make_executor(srv, use_cache=False), "What is six times seven?")
        ctx = RunContext(run_code=sandbox_code_runner(sandbox), code_timeout=5)
        out = run_op(ctx, lambda: prog(analysis="multiply"))
    assert out.endswith("the output of solve() is: 42") and "return 6 * 7" in out
    second = prompts(srv)[1]
    assert "ZeroDivisionError" in second and "return 1 / 0" in second


@pytest.mark.docker
def test_programmer_gives_up_after_three_attempts(make_executor, sandbox: Any) -> None:
    with ScriptedServer(Script(default="```python\ndef solve():\n    while True:\n        pass\n```")) as srv:
        prog = op.Programmer(make_executor(srv, use_cache=False), "P")
        ctx = RunContext(run_code=sandbox_code_runner(sandbox), code_timeout=0.5)
        out = run_op(ctx, lambda: prog())
    assert out.startswith("Executing code failed 3 times") and "timeout" in out and srv.chat_requests == 3


@pytest.mark.docker
def test_test_repairs_against_public_tests_only(make_executor, sandbox: Any) -> None:
    fixed = "Off by one.\n```python\ndef add(a, b):\n    return a + b\n```"
    with ScriptedServer(Script(default=fixed)) as srv:
        problem = {"prompt": "def add(a, b):\n    '''Sum.'''\n", "entry_point": "add"}
        test = op.Test(make_executor(srv), problem)
        ctx = RunContext(
            task_type="code",
            entry_point="add",
            public_tests=("assert add(1, 2) == 3",),
            run_code=sandbox_code_runner(sandbox),
            code_timeout=5,
        )
        out = run_op(ctx, lambda: test(solution="def add(a, b):\n    return a + b + 1\n"))
        again = run_op(ctx, lambda: test(solution=out))
    assert out == "def add(a, b):\n    return a + b\n" and again == out
    assert srv.chat_requests == 1  # the passing solution needed no call
    failure = prompts(srv)[0]
    assert "assert add(1, 2) == 3" in failure and "AssertionError" in failure


@pytest.mark.docker
def test_test_keeps_the_best_version_when_repairs_fail(make_executor, sandbox: Any) -> None:
    with ScriptedServer(Script(default="```python\ndef add(a, b):\n    raise ValueError('no')\n```")) as srv:
        test = op.Test(
            make_executor(srv, use_cache=False),
            {"prompt": "def add(a, b):", "entry_point": "add"},
            test_loop=2,
        )
        ctx = RunContext(
            task_type="code",
            public_tests=("assert add(0, 0) == 0", "assert add(1, 2) == 3"),
            run_code=sandbox_code_runner(sandbox),
            code_timeout=5,
        )
        start = "def add(a, b):\n    return 0\n"  # passes one of two tests
        assert run_op(ctx, lambda: test(solution=start)) == start
    assert srv.chat_requests == 2


def test_extract_tag_and_code_helpers() -> None:
    assert extract_tag("<a>1</a> <a> 2 </a>", "a") == "2"
    assert extract_tag("<a>unclosed", "a") == "unclosed" and extract_tag("none", "a") is None
    assert extract_code("def f(:\n  pass") == "def f(:\n  pass"  # unparseable: returned as is
    assert extract_code("Here you go:\ndef f():\n    return 1\nThat is all.") == "def f():\n    return 1\n"
    assert (
        extract_code(
            "```\nimport math\ndef g():\n    return math.pi\n\nif __name__ == '__main__':\n    g()\n```", "g"
        )
        == "import math\ndef g():\n    return math.pi\n"
    )
