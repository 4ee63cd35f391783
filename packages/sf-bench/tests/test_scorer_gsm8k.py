"""GSM8K scorer: the original release's rules (openai/grade-school-math, grade_school_math/dataset.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sf_bench.datasets import load
from sf_bench.scorers import text_scorer
from sf_bench.scorers.gsm8k import extract_answer, extract_gold, score
from sf_bench.types import Problem, TaskType


def _problem(answer: str) -> Problem:
    return Problem(
        id="t", dataset="gsm8k", task_type=TaskType.MATH, prompt="q", reference="", answers=(answer,)
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # dataset.py ANS_RE = "#### (\-?[0-9\.\,]+)", first match, commas removed
        ("Natalia sold 72 clips.\n#### 72", "72"),
        ("#### 1,000,000", "1000000"),
        ("#### -3", "-3"),
        ("so #### 5 and later #### 7", "5"),
        # without ####: the last number of the answer
        ("First 16 - 3 - 4 = 9 eggs, so 9 * 2 = 18 dollars.", "18"),
        ("The answer is 18.", "18"),  # a sentence period is not a decimal point
        ("It costs $1,250.50 in total", "1250.5"),
        ("she has .5 of a pie", "0.5"),
        ("the temperature fell to -12 degrees", "-12"),
        ("from 2010-2015", "2015"),  # a hyphen between numbers is not a sign
        ("a loss of -$3.50", "-3.5"),
        ("no number at all", None),
    ],
)
def test_extraction(text: str, expected: str | None) -> None:
    assert extract_answer(text) == expected


def test_gold_commas_are_removed() -> None:
    # README gsm8k: the final answer may hold thousands separators; strip them before comparing
    assert extract_gold("2,125") == "2125"
    assert extract_gold("Walk...\n#### 1,450,000") == "1450000"
    assert score(_problem("2,125"), "She needs 2125 bricks").value == 1.0
    assert score(_problem("2125"), "#### 2,125").value == 1.0


@pytest.mark.parametrize(
    ("gold", "answer", "value"),
    [
        ("18", "#### 18", 1.0),
        ("18", "#### 18.00", 1.0),  # value equality (the official string compare would say 0)
        ("18", "The answer is 18.", 1.0),
        ("18", "The answer is 18.5", 0.0),
        ("-10", "The change is -10", 1.0),  # signs count
        ("-10", "The change is 10", 0.0),
        ("10", "We computed 10 and then 12", 0.0),  # the LAST number decides
        ("5", "#### 5 (we double-checked with 6 other ways)", 1.0),  # the #### answer wins over later numbers
        ("3", "", 0.0),
    ],
)
def test_scoring(gold: str, answer: str, value: float) -> None:
    result = score(_problem(gold), answer)
    assert result.value == value
    assert result.metrics == {} and result.failure is None


def test_detail_is_the_extracted_number() -> None:
    assert score(_problem("7"), "I think 7.0").detail == "7"
    assert score(_problem("7"), "no idea").detail is None


def test_gold_answers_score_one_on_validate_and_test() -> None:
    scorer = text_scorer("gsm8k")
    for p in load("gsm8k", "validate") + load("gsm8k", "test"):
        assert scorer(p, p.answers[0]).value == 1.0, p.id
        assert scorer(p, p.reference).value == 1.0, p.id  # the official worked solution with ####


def test_gold_answers_score_one_on_full(shared_data: Path) -> None:
    for p in load("gsm8k", "full", data_dir=shared_data):
        assert score(p, p.reference).value == 1.0, p.id
