"""ScoreFlow's optional extraction + 0/1 judge, over the scripted server."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from sf_workflows.judge import JudgeScorer
from sf_workflows.testing import Script, ScriptedServer, last_user_message


@dataclass
class Problem:
    dataset: str
    prompt: str
    answers: tuple[str, ...]
    extras: dict[str, Any] = field(default_factory=dict)
    id: str = "p"
    task_type: str = "qa"


def test_extraction_then_judge(make_executor) -> None:
    script = Script([(r"Extract the final answer", "\\boxed{42}"), (r"Only output 1", "1")])
    with ScriptedServer(script) as srv:
        scorer = JudgeScorer(make_executor(srv), form="Write it in LaTeX inside \\boxed{{}}.")
        verdict = asyncio.run(scorer(Problem("math", "What is 6*7?", ("42",)), "long reasoning... 42"))
    assert verdict.value == 1.0 and verdict.metrics == {"judge": 1.0} and verdict.failure is None
    extract, judge = (last_user_message(r) for r in srv.requests)
    assert "long reasoning... 42" in extract and "\\boxed" in extract
    assert "Reference answer(s): 42" in judge and "Predicted answer: \\boxed{42}" in judge
    assert scorer.usage.calls == 2 == verdict.usage.calls


def test_anything_but_one_or_zero_counts_zero(make_executor) -> None:
    script = Script([(r"Extract the final answer", "Paris"), (r"Only output 1", "Yes, correct.")])
    with ScriptedServer(script) as srv:
        verdict = asyncio.run(
            JudgeScorer(make_executor(srv), with_context=True)(
                Problem("drop", "Q", ("Paris",), {"passage": "P", "question": "Q?"}), "Paris"
            )
        )
    assert verdict.value == 0.0 and verdict.failure == "judge"
    assert "Context:\nP" in last_user_message(srv.requests[1])


def test_hotpotqa_length_rule_skips_the_judge(make_executor) -> None:
    with ScriptedServer(Script([(r"Extract the final answer", "a very long answer " * 10)])) as srv:
        verdict = asyncio.run(
            JudgeScorer(make_executor(srv), length_ratio=10)(Problem("hotpotqa", "Q", ("yes",)), "x")
        )
    assert verdict.value == 0.0 and verdict.failure == "judge_length" and srv.chat_requests == 1
