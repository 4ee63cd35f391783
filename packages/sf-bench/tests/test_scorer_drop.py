"""DROP scorer: allennlp-reading-comprehension allennlp_rc/eval/drop_eval.py (@d4a19b5c).

The expected values below are the official ones: those of the official test suite
(tests/eval/drop_eval_test.py) and of the rules in drop_eval.py, cited per case.
"""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import pytest

from sf_bench.datasets import load
from sf_bench.scorers import text_scorer
from sf_bench.scorers.drop import _max_assignment, get_metrics, normalize_answer, score
from sf_bench.types import Problem, TaskType


def _problem(*answers: str) -> Problem:
    return Problem(
        id="t", dataset="drop", task_type=TaskType.QA, prompt="q", reference=answers[0], answers=answers
    )


def test_normalisation_numbers_and_punctuation() -> None:
    # _normalize_number: str(float(token)); _remove_punc keeps number tokens intact
    assert normalize_answer("12.0") == normalize_answer("12.0  ") == normalize_answer("12.000")
    assert normalize_answer("12") == normalize_answer("  1.2e1  ") == "12.0"
    assert normalize_answer("12.0 persons") == "12.0 persons"
    assert normalize_answer("S.K. Singh") == "sk singh"
    # _tokenize splits on spaces AND hyphens
    assert normalize_answer("78-yard") == "78.0 yard"


@pytest.mark.parametrize(
    ("predicted", "gold", "expected"),
    [
        # test_float_numbers
        (["78"], ["78.0"], (1.0, 1.0)),
        # test_metric_is_length_aware: mean over max(len(gold), len(pred)) slots
        (["td"], ["td", "td"], (0.0, 0.5)),
        ("td", ["td", "td"], (0.0, 0.5)),
        (["td", "td"], ["td"], (0.0, 0.5)),
        (["the", "fat", "cat", "the fat", "fat cat", "the fat cat"], ["cat"], (0.0, 0.17)),
        (["cat"], ["the", "fat", "cat", "the fat", "fat cat", "the fat cat"], (0.0, 0.17)),
        (["the", "fat", "cat", "the fat", "fat cat", "the fat cat"], ["cat", "cat dog"], (0.0, 0.25)),
        # test_articles_are_ignored
        (["td"], ["the td"], (1.0, 1.0)),
        (["the a NOT an ARTICLE the an a"], ["NOT ARTICLE"], (1.0, 1.0)),
        # test_f1_ignores_word_order (bags are sets)
        (["John Elton"], ["Elton John"], (0.0, 1.0)),
        (["50 yard"], ["yard 50"], (0.0, 1.0)),
        # test_periods_commas_and_spaces_are_ignored
        (["Per.i.o.d...."], [".P....e.r,,i;;;o...d,,"], (1.0, 1.0)),
        (["Spa     c  e   s     "], ["    Spa c     e s"], (1.0, 1.0)),
        # test_splitting_on_hyphens (and rounding to 2 decimals: 2/3 -> 0.67)
        (["78-yard"], ["78 yard"], (1.0, 1.0)),
        (["78"], ["78-yard"], (0.0, 0.67)),
        (["78-yard"], ["78"], (0.0, 0.67)),
        # test_casing_is_ignored
        (["This was a triumph"], ["tHIS Was A TRIUMPH"], (1.0, 1.0)),
        # test_overlap_in_correct_cases
        (["Green bay", "packers"], ["Green bay", "packers"], (1.0, 1.0)),
        # test_simple_overlap_in_incorrect_cases: the numbers-must-match rule
        ([""], ["army"], (0.0, 0.0)),
        (["packers"], ["Green bay packers"], (0.0, 0.5)),
        (["yard"], ["36 yard td"], (0.0, 0.0)),
        (["23 yards"], ["43 yards"], (0.0, 0.0)),
        (["56 yards"], ["56 yd"], (0.0, 0.5)),
        (["26"], ["26 yard td"], (0.0, 0.5)),
        # test_multi_span_overlap_in_incorrect_cases: optimal one-to-one alignment of bags
        (
            ["78-yard", "56", "28", "40", "44", "touchdown"],
            ["78-yard", "56 yard", "1 yard touchdown"],
            (0.0, 0.28),
        ),
        (["23", "23 yard"], ["23-yard", "56 yards"], (0.0, 0.5)),
        (["John Karman", "Joe Hardy"], ["Joe Karman", "John Hardy"], (0.0, 0.5)),
        (["ottoman", "Kantakouzenous"], ["ottoman", "army of Kantakouzenous"], (0.0, 0.75)),
        # test_order_invariance
        (["a"], ["a", "b"], (0.0, 0.5)),
        (["b"], ["b", "a"], (0.0, 0.5)),
    ],
)
def test_official_get_metrics_cases(
    predicted: list[str] | str, gold: list[str], expected: tuple[float, float]
) -> None:
    assert get_metrics(predicted, gold) == expected


def test_max_over_gold_answers_ignoring_blank_ones() -> None:
    # evaluate_json / simple-evals drop_metric: max EM and max F1 over the gold candidates
    problem = _problem("1", "0")  # official test_json_loader: answer 1, validated 0
    result = score(problem, "1")
    assert (result.metrics["em"], result.value) == (1.0, 1.0)
    assert result.detail == "1"
    result = score(_problem("answer1", "answer2"), "answer")
    assert (result.metrics["em"], result.value) == (0.0, 0.0)
    assert score(_problem("", "  ", "Oslo"), "oslo").value == 1.0


def test_flattened_multi_span_gold_is_one_span() -> None:
    # simple-evals' ref_text joins a multi-span answer into one string: it is scored as one bag
    problem = _problem("under the age of 18 and 25 to 44 and 45 to 64")
    assert score(problem, "under the age of 18, 25 to 44 and 45 to 64").value == 1.0
    # a prediction listing candidates with "|" is NOT split (AFlow splits it and keeps the best)
    assert score(_problem("Smith"), "Smith | Jones | Brown").value == 0.5


def test_numbers_must_match_even_when_words_overlap() -> None:
    result = score(_problem("4 touchdowns"), "3 touchdowns")
    assert result.value == 0.0 and result.metrics["em"] == 0.0
    assert score(_problem("4 touchdowns"), "four touchdowns").value == 0.0
    assert score(_problem("4"), "4.0").value == 1.0


def test_assignment_is_exactly_optimal() -> None:
    # _align_bags' linear_sum_assignment is replaced by an exact Hungarian algorithm: check the
    # total against brute force over every one-to-one assignment.
    rng = random.Random(7)
    for _ in range(300):
        rows, cols = rng.randint(1, 5), rng.randint(1, 5)
        scores = [
            [rng.choice([0.0, 0.25, 0.5, 2 / 3, 1.0, rng.random()]) for _ in range(cols)] for _ in range(rows)
        ]
        pairs = _max_assignment(scores)
        assert len(pairs) == min(rows, cols)
        assert len({r for r, _ in pairs}) == len(pairs) == len({c for _, c in pairs})
        total = sum(scores[r][c] for r, c in pairs)
        if rows <= cols:
            best = max(
                sum(scores[r][c] for r, c in zip(range(rows), perm, strict=True))
                for perm in itertools.permutations(range(cols), rows)
            )
        else:
            best = max(
                sum(scores[r][c] for r, c in zip(perm, range(cols), strict=True))
                for perm in itertools.permutations(range(rows), cols)
            )
        assert total == pytest.approx(best)


def test_gold_answers_score_one_on_validate_and_test() -> None:
    scorer = text_scorer("drop")
    for p in load("drop", "validate") + load("drop", "test"):
        for answer in p.answers:
            result = scorer(p, answer)
            assert (result.value, result.metrics["em"]) == (1.0, 1.0), (p.id, answer)


def test_gold_answers_score_one_on_full_dev(shared_data: Path) -> None:
    for p in load("drop", "full", data_dir=shared_data):
        for answer in p.answers:
            assert score(p, answer).value == 1.0, (p.id, answer)
