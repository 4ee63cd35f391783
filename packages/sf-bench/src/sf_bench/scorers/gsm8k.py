r"""GSM8K scorers: two named metrics, ``official`` and ``numeric`` (the default).

Every GSM8K score carries both verdicts in ``Score.metrics`` (``{"official": 0/1, "numeric":
0/1}``); ``value`` is the verdict of the metric the run chose, and the summary's ``metric``
column and ``run.json``'s ``scoring`` name it. This is lm-evaluation-harness's split between
GSM8K's ``strict-match`` (``#### `` only) and ``flexible-extract`` (last number).

``official``: the rule of the original release, ``openai/grade-school-math``
(``grade_school_math/dataset.py``: ``ANS_RE``, ``INVALID_ANS``, ``extract_answer``,
``is_correct``), quirks included:

1. the answer is the first match of ``#### (\-?[0-9\.\,]+)`` (exactly one space after
   ``####``, no ``$``), stripped, commas removed; with no match it is ``"[invalid]"``;
2. the gold is the same extraction of the official worked solution (``problem.reference``);
3. correct iff the two *strings* are equal: ``#### 18.00`` and ``#### 18.`` (a sentence
   period) fail against ``18``, ``#### 18`` at the end of ``#### 180`` does not exist, and an
   answer without ``#### `` is always wrong, however clearly it states the number.

``numeric`` (value rule, for free-form answers such as a workflow's; ScoreFlow's and AFlow's own
GSM8K scorer is a last-number rule too): the number an answer gives, compared by value.

1. Prediction: if the answer contains the official ``#### `` line, the number written right
   after it (so ``#### 18.00`` is 18); otherwise the **last number** in the answer. A number is
   an optional sign (``-`` or the Unicode minus, not when it follows a letter, digit or closing
   bracket, so ``2010-2015`` is ``2015``; ``-$3`` is ``-3``), digits with optional thousands
   separators (``1,000,000``), optional decimals (``.5``, ``3.75``), and optionally a
   denominator: a fraction ``a/b`` (or ``\frac{a}{b}``, ``\dfrac``, ``\tfrac``) is **one**
   number, so "The probability is 3/4" reads 3/4 (0.75), not 4. A trailing sentence period is
   not part of the number; a chained ``a/b/c`` (a date) is not a number; ``a/0`` is skipped.
2. Gold: the final answer after ``#### `` (``problem.answers``), commas removed.
3. Comparison: exact rational equality (:class:`fractions.Fraction`), so ``18`` = ``18.0`` =
   ``36/2`` and ``-3`` != ``3``.

Not numbers in either metric: scientific notation, number words, mixed numbers (``1 1/2`` reads
1/2). Differences from AFlow/ScoreFlow's scorer (``benchmark/gsm8k.py``): they take the last
number even after a ``####``, parse ``.5`` as ``5`` and ``3/4`` as ``4``, take ``-`` in
``2010-2015`` as a sign, and compare floats within 1e-6; ScoreFlow first asks gpt-4o-mini to
extract the number.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from fractions import Fraction

from sf_bench.scorers._text import answer_text
from sf_bench.types import Problem, Score

__all__ = [
    "ANS_RE",
    "INVALID_ANS",
    "METRICS",
    "SCORERS",
    "extract_answer",
    "extract_gold",
    "official_extract",
    "score",
    "score_numeric",
    "score_official",
]

METRICS = ("numeric", "official")
"""This dataset's metric names; the first is the default."""

ANS_RE = re.compile(r"#### (\-?[0-9\.\,]+)")
"""The official pattern for the ``#### <answer>`` line."""

INVALID_ANS = "[invalid]"
"""What the official extraction returns for an answer without a ``#### `` line."""

_NUMBER_RE = re.compile(
    r"(?P<sign>(?<![A-Za-z0-9_.)\]])[-\u2212])?\$?"
    r"(?<![0-9.])(?<![0-9]/)"
    r"(?P<num>(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+)"
    r"(?:/(?P<den>\d+))?"
    r"(?![0-9])(?!/[0-9])"
)
_LATEX_FRAC = re.compile(r"\\[dt]?frac\{\s*(-?[0-9.,]+)\s*\}\{\s*([0-9]+)\s*\}")


def official_extract(completion: str) -> str:
    """grade-school-math's ``extract_answer``: the first ``#### `` answer, or ``INVALID_ANS``.

    Commas are removed from the answer; :data:`INVALID_ANS` when there is none.
    """
    match = ANS_RE.search(completion)
    if match:
        return match.group(1).strip().replace(",", "")
    return INVALID_ANS


def _official_gold(problem: Problem) -> str:
    gold = official_extract(problem.reference)
    if gold == INVALID_ANS and problem.answers:  # a hand-made problem with no worked solution
        gold = official_extract("#### " + problem.answers[0])
    return gold


def _official(problem: Problem, text: str) -> tuple[bool, str]:
    predicted = official_extract(text)
    gold = _official_gold(problem)
    return gold != INVALID_ANS and predicted == gold, predicted


def _to_fraction(num: str, den: str | None = None, sign: str = "") -> Fraction | None:
    num = num.replace(",", "").rstrip(".")
    if not num or num in {"-", "."}:
        return None
    try:
        value = Fraction(Decimal(sign + num))
    except (InvalidOperation, ValueError):
        return None
    if den is not None:
        if int(den) == 0:
            return None
        value /= int(den)
    return value


def _fmt(value: Fraction) -> str:
    if value.denominator == 1:
        return str(value.numerator)
    d = value.denominator
    while d % 2 == 0:
        d //= 2
    while d % 5 == 0:
        d //= 5
    if d != 1:
        return f"{value.numerator}/{value.denominator}"
    text = format(Decimal(value.numerator) / Decimal(value.denominator), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _numeric_value(text: str) -> Fraction | None:
    text = _LATEX_FRAC.sub(lambda m: f"{m.group(1)}/{m.group(2)}", text)
    official = ANS_RE.search(text)
    if official:
        first = _NUMBER_RE.match(text, official.start(1))
        if first is not None:
            value = _to_fraction(first.group("num"), first.group("den"), "-" if first.group("sign") else "")
            if value is not None:
                return value
    last = None
    for m in _NUMBER_RE.finditer(text):
        value = _to_fraction(m.group("num"), m.group("den"), "-" if m.group("sign") else "")
        if value is not None:
            last = value
    return last


def extract_answer(text: str) -> str | None:
    """The number an answer gives under ``numeric``, normalised, or None.

    Normalised as in ``"1000"``, ``"-3"``, ``"0.5"``, ``"2/3"``. See the module docstring for the
    rules.
    """
    value = _numeric_value(text)
    return None if value is None else _fmt(value)


def extract_gold(answer: str) -> str | None:
    """Normalise a gold final answer (``"2,125"`` -> ``"2125"``); also accepts a full ``####`` solution."""
    match = ANS_RE.search(answer)
    value = _to_fraction((match.group(1) if match else answer).strip())
    return None if value is None else _fmt(value)


def _numeric(problem: Problem, text: str) -> tuple[bool, str | None]:
    predicted = _numeric_value(text)
    if predicted is None:
        return False, None
    for gold in problem.answers:
        match = ANS_RE.search(gold)
        gold_value = _to_fraction((match.group(1) if match else gold).strip())
        if gold_value is not None and gold_value == predicted:
            return True, _fmt(predicted)
    return False, _fmt(predicted)


def _both(problem: Problem, answer: object) -> tuple[dict[str, float], str, str | None]:
    text = answer_text(answer)
    official, official_detail = _official(problem, text)
    numeric, numeric_detail = _numeric(problem, text)
    return {"official": float(official), "numeric": float(numeric)}, official_detail, numeric_detail


def score_numeric(problem: Problem, answer: str) -> Score:
    """``numeric``: 1.0 iff the answer's final number equals the gold by value.

    ``metrics`` holds both verdicts; ``detail`` is the number read (None when there is none).
    """
    metrics, _, detail = _both(problem, answer)
    return Score(value=metrics["numeric"], metrics=metrics, detail=detail)


def score_official(problem: Problem, answer: str) -> Score:
    """``official``: grade-school-math's ``is_correct`` exactly (see the module docstring).

    ``metrics`` holds both verdicts; ``detail`` is the official extraction (``"[invalid]"``
    when the answer has no ``#### `` line).
    """
    metrics, detail, _ = _both(problem, answer)
    return Score(value=metrics["official"], metrics=metrics, detail=detail)


score = score_numeric
"""The default metric's scorer (``numeric``)."""

SCORERS = {"numeric": score_numeric, "official": score_official}
"""Scorer per metric name (:data:`METRICS`)."""
