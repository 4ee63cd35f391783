"""MATH scorer: last box at any depth, hendrycks/math is_equiv (modeling/math_equivalence.py), math-verify."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from sf_bench.datasets import load
from sf_bench.scorers import _symbolic, text_scorer
from sf_bench.scorers._text import last_boxed_answer, last_boxed_only_string
from sf_bench.scorers.math import extract_answer, is_equiv, score, score_official, strip_string
from sf_bench.types import Problem, TaskType


def _problem(gold: str) -> Problem:
    return Problem(
        id="t",
        dataset="math",
        task_type=TaskType.MATH,
        prompt="q",
        reference=f"so $\\boxed{{{gold}}}$",
        answers=(gold,),
    )


# --- extraction: last \boxed{} / \fbox{} at any nesting depth (modeling/dataset/util.py) ---------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "so $\\boxed{\\frac{\\sqrt{3}}{2}}$.",
            "\\frac{\\sqrt{3}}{2}",
        ),  # two levels: AFlow's regex misses it
        (
            "\\boxed{\\left\\{ \\frac{1}{2}, \\frac{3}{4}\\right\\}}",
            "\\left\\{ \\frac{1}{2}, \\frac{3}{4}\\right\\}",
        ),
        ("first \\boxed{1}, finally \\boxed{2}", "2"),  # the last one
        ("\\fbox{7}", "7"),
        ("\\boxed{3} then \\fbox{4}", "4"),  # the last of either command
        ("The answer is $\\boxed 5$.", "5"),
        ("\\boxed {12}", "12"),
        ("\\boxed{unclosed", None),
        ("no box", None),
    ],
)
def test_last_box_extraction(text: str, expected: str | None) -> None:
    assert last_boxed_answer(text) == expected


def test_last_box_only_string_keeps_the_command() -> None:
    assert last_boxed_only_string("x \\boxed{a{b}c} y") == "\\boxed{a{b}c}"


def test_unboxed_answer_is_its_final_answer_span() -> None:
    assert extract_answer("  $\\frac{1}{2}$ ") == ("\\frac{1}{2}", False)
    assert extract_answer("we get \\boxed{3}") == ("3", True)
    assert extract_answer("Work...\nThe answer is 5.5.") == ("5.5", False)
    assert extract_answer("The answer is \\frac{5\\pi}{4}.") == ("\\frac{5\\pi}{4}", False)
    assert extract_answer("Answer: (C)") == ("(C)", False)
    assert extract_answer("so $x=2$ and the answer is $\\sqrt{2}$ metres.") == ("\\sqrt{2}", False)
    assert extract_answer("Final Answer: The final answer is $7$. I hope it is correct.") == ("7", False)
    assert extract_answer("  \n ") == ("", False)
    assert extract_answer("**Answer:** \\frac{5\\pi}{4}") == ("\\frac{5\\pi}{4}", False)
    assert extract_answer("The final answer is 12. I hope it is correct.") == ("12", False)


# --- hendrycks/math modeling/math_equivalence_test.py, case by case -------------------------------


_HENDRYCKS = [
    ("\\tfrac{1}{2} + \\frac1{72}", "\\\\frac{1}{2} + 2/3", False),  # test_fractions
    ("10, 4, -2", "4, 10, -2", False),  # test_order
    ("10, 4, 2", "4, 12, 2", False),  # test_order2
    ("\\tfrac{1}{2} +\\! \\frac1{72}", "\\\\dfrac{1}{2} +\\frac{1}{72}", True),  # test_dfrac
    ("10\\text{ units}", "10 ", True),  # test_units
    ("10\\text{ units}", "100 ", False),  # test_units2
    ("10", "\\$10", True),  # test_dollars
    ("\\left(x-2\\right)\\left(x+2\\right)", "(x-2)(x+2)", True),  # test_parentheses
    ("0.1, 4, 2", "4, .1, 2", False),  # test_decimals
    ("0.1", ".1", True),  # test_decimals2
    ("10\\%", "10", True),  # test_percentage
    ("10\\sqrt{3} + \\sqrt4", "10\\sqrt3 + \\sqrt{4}", True),  # test_sqrt
    ("\\frac34i", "\\frac{3}{4}i", True),  # test_frac
    ("\\tfrac83", "\\frac{8}{3}", True),  # test_tfrac
    ("5x - 7y + 11z + 4 = 0", "x + y - z + 2 = 0", False),  # test_expression
    ("1/2", "\\frac{1}{2}", True),  # test_half
]


@pytest.mark.parametrize(("a", "b", "equal"), _HENDRYCKS)
def test_hendrycks_is_equiv_suite(a: str, b: str, equal: bool) -> None:
    assert is_equiv(a, b) is equal


def test_hendrycks_normalisation_details() -> None:
    assert strip_string("0.5") == "\\frac{1}{2}"  # "manually change 0.5 --> \frac{1}{2}"
    assert strip_string("90^\\circ") == strip_string("90^{\\circ}") == "90"  # degrees
    assert strip_string("k = 7") == "7"  # short "k = " prefix dropped
    assert strip_string("\\dfrac{3}{4}") == "\\frac{3}{4}"
    # normalisation failures fall back to raw string equality, as the original's bare except does
    assert is_equiv("1\\text{ a}\\text{ b}", "1\\text{ a}\\text{ b}")
    assert not is_equiv("1\\text{ a}\\text{ b}", "1")
    assert is_equiv("\\sqrt", "\\sqrt") and not is_equiv("2\\sqrt", "2")
    assert is_equiv(None, None) and not is_equiv("1", None)


# --- the scorer: string match OR math-verify -------------------------------------------------------


@pytest.mark.parametrize(
    ("gold", "answer"),
    [
        ("\\frac{1}{2}", "\\boxed{0.5}"),  # 0.5 vs \frac12 (Hendrycks special case)
        ("\\frac{1}{2}", "\\boxed{\\dfrac12}"),
        ("\\frac{\\sqrt{3}}{2}", "Thus $\\boxed{\\frac{\\sqrt{3}}{2}}$."),
        ("\\frac{\\sqrt{3}}{2}", "\\boxed{\\sqrt{3}/2}"),  # symbolic
        ("135", "\\boxed{135^\\circ}"),  # degrees
        ("10", "\\boxed{10\\text{ cm}}"),  # units after "\text{ "
        ("\\text{(C)}", "\\boxed{(C)}"),  # \text{} unwrapped
        ("\\textbf{(A)}", "\\boxed{\\text{(A)}}"),
        ("x^2+2x+1", "\\boxed{(x+1)^2}"),  # math-verify
        ("\\{1,2\\}", "\\boxed{\\{2,1\\}}"),
        ("\\left( 3, \\frac{\\pi}{2} \\right)", "\\boxed{(3,\\frac{\\pi}{2})}"),
        ("23", "23"),  # no box: the whole answer
        ("23", "The smallest such integer is 23."),  # no box: math-verify extracts
        ("\\$18.90", "\\boxed{18.90}"),
    ],
)
def test_equivalent_answers_score_one(gold: str, answer: str) -> None:
    result = score(_problem(gold), answer)
    assert result.value == 1.0, result
    assert result.failure is None


@pytest.mark.parametrize(
    ("gold", "answer"),
    [
        ("135", "\\boxed{136}"),
        ("\\frac{1}{2}", "\\boxed{\\frac{1}{3}}"),
        ("(1,2)", "\\boxed{(2,1)}"),  # order matters for tuples
        ("[1,2)", "\\boxed{[1,2]}"),  # interval ends matter
        ("6", "\\boxed{6.0001}"),
        ("3.1416", "\\boxed{\\pi}"),  # AFlow's 1e-3 tolerance would accept this
        ("23", "I am not sure."),
        ("23", ""),
        ("23", "\\boxed{}"),
    ],
)
def test_wrong_answers_score_zero(gold: str, answer: str) -> None:
    assert score(_problem(gold), answer).value == 0.0


def test_detail_and_metrics_say_what_decided() -> None:
    # both named metrics' verdicts travel with every score (equiv = the value, official beside it)
    exact = score(_problem("135"), "\\boxed{135}")
    assert exact.detail == "135"
    assert exact.metrics == {"string_match": 1.0, "equiv": 1.0, "official": 1.0}
    symbolic = score(_problem("\\frac{\\sqrt{2}}{2}"), "\\boxed{\\sqrt{2}/2}")
    assert symbolic.metrics == {"string_match": 0.0, "symbolic": 1.0, "equiv": 1.0, "official": 0.0}
    assert symbolic.detail == "\\sqrt{2}/2"
    wrong = score(_problem("2"), "\\boxed{3}")
    assert wrong.metrics == {"string_match": 0.0, "symbolic": 0.0, "equiv": 0.0, "official": 0.0}


def test_symbolic_check_is_killed_at_its_time_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _symbolic.equivalent("1", "1", pred_is_boxed_content=True) is True  # warm helper
    start = time.monotonic()
    verdict = _symbolic.equivalent("1", "9^{9^{9}}", pred_is_boxed_content=True, timeout=0.5)
    assert verdict is None  # a huge power: sympy would take seconds
    assert time.monotonic() - start < 3.0
    # the helper was replaced: the next check works
    assert _symbolic.equivalent("\\frac{1}{2}", "0.5", pred_is_boxed_content=True) is True
    # through score(): a check that times out counts as not equivalent and is reported
    monkeypatch.setattr(_symbolic, "DEFAULT_TIMEOUT", 0.5)
    result = score(_problem("1"), "\\boxed{9^{9^{9}}}")
    assert result.value == 0.0 and result.metrics["symbolic_timeout"] == 1.0


def test_scorer_is_thread_safe() -> None:
    # math-verify's own timeout uses signal.alarm (main thread only); our checks must work from
    # any thread and give the same verdicts as sequential calls.
    cases = [
        ("\\frac{\\sqrt{2}}{2}", "\\boxed{\\sqrt{2}/2}"),
        ("x^2+2x+1", "\\boxed{(x+1)^2}"),
        ("7", "\\boxed{8}"),
        ("\\frac{1}{2}", "\\boxed{0.5}"),
    ] * 4
    expected = [score(_problem(g), a).value for g, a in cases]
    results: list[float | None] = [None] * len(cases)
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            results[i] = score(_problem(cases[i][0]), cases[i][1]).value
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(cases))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors and results == expected == [1.0, 1.0, 0.0, 1.0] * 4


def test_gold_answers_score_one_on_validate_and_test() -> None:
    scorer = text_scorer("math")
    for p in load("math", "validate") + load("math", "test"):
        assert scorer(p, p.reference).value == 1.0, p.id  # the official solution, last box
        assert scorer(p, "\\boxed{" + p.answers[0] + "}").value == 1.0, p.id


def test_no_cross_matches_between_different_gold_answers() -> None:
    # a false-positive check of the symbolic path: another problem's gold must not match,
    # except genuinely equal values
    problems = load("math", "validate")
    matches = []
    for i, p in enumerate(problems):
        other = problems[(i + 1) % len(problems)]
        if score(p, "\\boxed{" + other.answers[0] + "}").value == 1.0:
            matches.append((p.answers[0], other.answers[0]))
    assert all(is_equiv(a, b) for a, b in matches), matches


@pytest.mark.parametrize("split", ["full", "math500"])
def test_gold_answers_score_one_on_full_and_math500(shared_data: Path, split: str) -> None:
    for p in load("math", split, data_dir=shared_data):
        assert score(p, p.reference).value == 1.0, p.id


# --- one rule for unboxed answers, whatever the form (issue 13) ----------------------------------

_FORMS = [
    "3:2",
    "5.5",
    "\\frac{5\\pi}{4}",
    "\\sqrt{2}",
    "(1,2)",
    "12",
    "x^2+1",
    "\\text{(C)}",
    "-\\frac{3}{4}",
]


@pytest.mark.parametrize("gold", _FORMS)
@pytest.mark.parametrize(
    "template",
    ["The answer is {}.", "Answer: {}", "The answer is ${}$.", "Work.\nSo the final answer is {}", "{}"],
)
def test_unboxed_answers_follow_one_rule_for_every_form(gold: str, template: str) -> None:
    assert score(_problem(gold), template.format(gold)).value == 1.0
    assert score(_problem(gold), template.format("\\boxed{" + gold + "}")).value == 1.0
    other = "7.5" if gold != "7.5" else "1"
    assert score(_problem(gold), template.format(other)).value == 0.0


def test_unboxed_answer_must_be_the_final_statement() -> None:
    assert score(_problem("5"), "The answer is 5. Let me double-check this.").value == 0.0
    assert score(_problem("5"), "The answer is 5.\nI hope it is correct.").value == 0.0


# --- the official metric: hendrycks/math eval_math_gpt.py exactly --------------------------------


@pytest.mark.parametrize(
    ("gold", "answer", "official", "equiv"),
    [
        ("5", "\\boxed{5}", 1.0, 1.0),
        ("5", "The answer is 5.", 0.0, 1.0),  # no box: remove_boxed(None) is None
        ("5", "\\fbox{5}", 0.0, 1.0),  # remove_boxed accepts only \boxed{
        ("5", "$\\boxed 5$", 0.0, 1.0),  # no braces after \boxed
        ("1", "\\boxed{1} then \\fbox{2}", 1.0, 1.0),  # the last \boxed beats a later \fbox
        ("\\frac{\\sqrt{3}}{2}", "\\boxed{\\sqrt{3}/2}", 0.0, 1.0),  # math-verify only
        ("\\text{(C)}", "\\boxed{(C)}", 0.0, 1.0),  # \text{} unwrapped only by equiv
        ("\\frac{1}{2}", "\\boxed{0.5}", 1.0, 1.0),  # is_equiv's own special case
        ("10", "\\boxed{10\\text{ cm}}", 1.0, 1.0),  # is_equiv drops units after "\text{ "
        ("135", "\\boxed{136}", 0.0, 0.0),
    ],
)
def test_official_metric_is_hendrycks_and_equiv_is_labelled(
    gold: str, answer: str, official: float, equiv: float
) -> None:
    p = _problem(gold)
    default, strict = score(p, answer), score_official(p, answer)
    assert (strict.value, default.value) == (official, equiv)
    assert default.metrics["official"] == strict.metrics["official"] == official
    assert default.metrics["equiv"] == strict.metrics["equiv"] == equiv
    assert text_scorer("math").metric == "equiv" and text_scorer("math", "official").metric == "official"


def _variants(gold: str) -> list[str]:
    """Forms hendrycks' _strip_string normalises to the same string as ``gold``."""
    out = [
        gold.replace("\\frac", "\\dfrac"),
        gold.replace("\\frac", "\\tfrac"),
        " " + gold.replace(",", ", ") + " ",
        "\\left(" + gold + "\\right)" if gold.startswith("(") else gold + "^\\circ",
        gold + "\\%",
        "\\$" + gold,
        gold + "\\text{ units}",
        "x = " + gold if "=" not in gold else gold,
    ]
    return [v for v in out if is_equiv(v, gold)]


def test_equiv_accepts_everything_is_equiv_accepts_on_every_gold() -> None:
    problems = load("math", "validate") + load("math", "test")
    checked = 0
    for p in problems:
        for v in _variants(p.answers[0]):
            for answer in ("\\boxed{" + v + "}", "so $\\boxed{" + v + "}$ and done"):
                assert score_official(p, answer).value == 1.0, (p.id, answer)
                assert score(p, answer).value == 1.0, (p.id, answer)
                checked += 1
    assert checked > 4 * len(problems)


@pytest.mark.parametrize(
    ("a", "b"), [(a, b) for a, b, equal in _HENDRYCKS if equal], ids=lambda x: str(x)[:20]
)
def test_equiv_accepts_the_hendrycks_suite_positives(a: str, b: str) -> None:
    gold = b.replace("\\\\", "\\")
    result = score(_problem(gold), "\\boxed{" + a + "}")
    assert result.value == 1.0 and result.metrics["official"] == result.metrics["equiv"] == 1.0
