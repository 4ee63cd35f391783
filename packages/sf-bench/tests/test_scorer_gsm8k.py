"""GSM8K scorers: ``official`` and the labelled value rule ``numeric`` (the default).

``official`` is openai/grade-school-math's rule (grade_school_math/dataset.py, quirks included).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sf_bench.datasets import load
from sf_bench.scorers import text_scorer
from sf_bench.scorers.gsm8k import (
    INVALID_ANS,
    extract_answer,
    extract_gold,
    official_extract,
    score,
    score_official,
)
from sf_bench.types import Problem, TaskType


def _problem(answer: str) -> Problem:
    return Problem(
        id="t",
        dataset="gsm8k",
        task_type=TaskType.MATH,
        prompt="q",
        reference="Work.\n#### " + answer,
        answers=(answer,),
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
        # a fraction is one number, not its denominator
        ("The probability is 3/4", "0.75"),
        ("The probability is 3/4.", "0.75"),
        ("so $\\frac{2}{3}$ of them", "2/3"),
        ("-1/2 of a cup", "-0.5"),
        ("#### 3/4", "0.75"),
        ("#### 18.00", "18"),
        ("born 10/12/2020, aged 7", "7"),  # a chained a/b/c (a date) is not a number
        ("ratio 5/0, then 9", "9"),  # a/0 is skipped
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
    assert result.value == value == result.metrics["numeric"]
    assert set(result.metrics) == {"official", "numeric"} and result.failure is None


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


def _reference(pid: str) -> Problem:
    return next(p for p in load("gsm8k", "test") if p.id == pid)


# grade_school_math/dataset.py, case by case, written here as a reference: extract_answer, then
# string equality with the gold's extract_answer (INVALID_ANS without a "#### " line).
@pytest.mark.parametrize(
    ("answer", "official", "numeric"),
    [
        ("#### 18", 1.0, 1.0),
        ("Janet makes 18 dollars.\n#### 18", 1.0, 1.0),
        ("#### 18.00", 0.0, 1.0),  # the official compares strings
        ("#### 18.", 0.0, 1.0),  # a sentence period is part of the official match
        ("The answer is 18.", 0.0, 1.0),  # no "#### ": invalid, officially
        ("18", 0.0, 1.0),
        ("####18", 0.0, 1.0),  # the official pattern needs exactly one space
        ("####  18", 0.0, 1.0),
        ("#### $18", 0.0, 1.0),  # "$" is not in the official class; numeric reads the last number
        ("#### 1,8", 1.0, 0.0),  # commas removed officially: "18"; not a thousands separator for numeric
        ("#### 18 and later #### 20", 1.0, 1.0),  # the first match
        ("#### 20 then #### 18", 0.0, 0.0),
        ("#### 180", 0.0, 0.0),
        ("#### -18", 0.0, 0.0),
        ("The total is 36/2 dollars", 0.0, 1.0),  # a fraction is one number
        ("", 0.0, 0.0),
    ],
)
def test_official_metric_reproduces_grade_school_math_and_numeric_is_labelled(
    answer: str, official: float, numeric: float
) -> None:
    p = _reference("gsm8k-test-0")  # Janet's ducks, #### 18
    assert p.answers == ("18",)
    strict, default = score_official(p, answer), score(p, answer)
    assert (strict.value, default.value) == (official, numeric)
    assert strict.metrics == default.metrics == {"official": official, "numeric": numeric}
    assert text_scorer("gsm8k").metric == "numeric"
    assert text_scorer("gsm8k", "official").metric == "official"


def test_official_extraction_is_the_release_rule() -> None:
    assert official_extract("no hashes") == INVALID_ANS == "[invalid]"
    assert official_extract("#### 1,000,000") == "1000000"
    assert official_extract("#### 3.5.") == "3.5."
    assert official_extract("x #### -,5") == "-5"
    assert score_official(_reference("gsm8k-test-0"), "The answer is 18.").detail == INVALID_ANS


def test_official_golds_score_one_on_every_split_problem() -> None:
    for p in load("gsm8k", "validate") + load("gsm8k", "test"):
        assert score_official(p, p.reference).value == 1.0, p.id
        assert score_official(p, "#### " + p.answers[0]).value == 1.0, p.id
        assert score_official(p, p.answers[0]).value == 0.0, p.id  # bare number: invalid officially
