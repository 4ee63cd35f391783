"""HotpotQA scorer: hotpotqa/hotpot hotpot_evaluate_v1.py (normalize_answer, f1_score, exact_match_score)."""

from __future__ import annotations

import pytest

from sf_bench.datasets import load
from sf_bench.scorers import text_scorer
from sf_bench.scorers.hotpotqa import exact_match, f1_precision_recall, score
from sf_bench.types import Problem, TaskType


def _problem(answer: str) -> Problem:
    return Problem(
        id="t", dataset="hotpotqa", task_type=TaskType.QA, prompt="q", reference=answer, answers=(answer,)
    )


@pytest.mark.parametrize(
    ("prediction", "gold", "em", "f1"),
    [
        # normalize_answer: lower, drop punctuation, drop a/an/the, collapse spaces
        ("The Beatles!", "beatles", 1.0, 1.0),
        ("  Paris ,  France ", "paris france", 1.0, 1.0),
        ("an apple", "apple", 1.0, 1.0),
        # token F1 over multisets (Counter &): precision 1/2, recall 1
        ("New York", "York", 0.0, 2 / 3),
        ("york york", "york", 0.0, 2 / 3),  # Counter: only one "york" is shared
        ("Barack Obama", "Michelle Obama", 0.0, 0.5),
        ("Gesellschaft mit beschränkter Haftung", "Gesellschaft mit beschränkter Haftung", 1.0, 1.0),
        ("London", "Paris", 0.0, 0.0),
        # yes/no/noanswer rule: F1 = 0 if either side is one of them and they differ
        ("no", "no way", 0.0, 0.0),
        ("yes", "yes sir", 0.0, 0.0),
        ("no way", "no", 0.0, 0.0),
        ("noanswer", "no answer", 0.0, 0.0),
        ("Yes.", "yes", 1.0, 1.0),
        ("no", "No", 1.0, 1.0),
        # a gold that normalises to nothing: num_same == 0, so F1 = 0 even for itself; EM still 1
        ("!!!", "!!!", 1.0, 0.0),
        ("The The", "the the", 1.0, 0.0),
    ],
)
def test_official_rules(prediction: str, gold: str, em: float, f1: float) -> None:
    assert exact_match(prediction, gold) == em
    assert f1_precision_recall(prediction, gold)[0] == pytest.approx(f1)
    result = score(_problem(gold), prediction)
    assert result.value == pytest.approx(f1)
    assert result.metrics["em"] == em and result.metrics["f1"] == pytest.approx(f1)


def test_precision_and_recall_are_reported() -> None:
    result = score(_problem("York"), "New York City")
    assert result.metrics["precision"] == pytest.approx(1 / 3) and result.metrics["recall"] == 1.0


def test_gold_answers_score_one_except_the_two_that_normalise_to_nothing() -> None:
    # hotpot_evaluate_v1.f1_score returns 0 when no token is shared, so the two test golds
    # "!!!" and "The The" (band names) can never reach F1 > 0; EM is 1 for them.
    scorer = text_scorer("hotpotqa")
    zero = {}
    problems = load("hotpotqa", "validate") + load("hotpotqa", "test")
    for p in problems:
        result = scorer(p, p.reference)
        assert result.metrics["em"] == 1.0, p.id
        if result.value != 1.0:
            zero[p.id] = p.reference
    assert zero == {"5a8b3d795542997f31a41cc1": "!!!", "5ae4988655429970de88d9c1": "The The"}
