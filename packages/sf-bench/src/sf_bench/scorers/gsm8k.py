"""GSM8K scorer: final-number match, as the original release grades (``openai/grade-school-math``).

Rules (``grade_school_math/dataset.py``: ``ANS_RE``, ``extract_answer``, ``is_correct``):

1. Gold: the problem's final answer (the text after ``#### `` in the official solution), commas
   removed: ``"2,125"`` -> ``2125``.
2. Prediction: if the answer contains ``#### <number>`` the first such number is taken, exactly
   with the official pattern ``#### (-?[0-9.,]+)`` and commas removed. Otherwise the **last
   number** in the answer is taken (the convention of the GSM8K paper's few-shot evaluations
   and of AFlow/ScoreFlow): an optional sign (``-`` or the Unicode minus, not when it follows a
   letter, digit or closing bracket, so ``2010-2015`` is ``2015``; ``-$3`` is ``-3``), digits
   with optional thousands separators (``1,000,000``), optional decimals (``.5``, ``3.75``). A
   trailing sentence period is not part of the number.
3. Comparison: exact decimal equality of the two numbers (:class:`decimal.Decimal`), so
   ``18`` = ``18.0`` = ``18.00`` and ``-3`` != ``3``.

Differences from the official grader, on purpose: the official compares the two extracted
*strings*, so ``#### 18.00`` or ``#### 18.`` (a sentence period) fails against ``18``; we compare
values. The official needs ``####``; we fall back to the last number. Differences from
AFlow/ScoreFlow (``benchmark/gsm8k.py``): they take the last number even after a ``####``, parse
``.5`` as ``5``, take ``-`` in ``2010-2015`` as a sign, and compare floats within 1e-6 (so
``1e-7`` away counts as equal); ScoreFlow first asks gpt-4o-mini to extract the number.
Fractions (``3/4``), scientific notation and number words are not numbers here (nor in any of
those graders).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from sf_bench.types import Problem, Score

__all__ = ["extract_answer", "extract_gold", "score"]

ANS_RE = re.compile(r"#### (\-?[0-9\.\,]+)")
"""The official pattern for the ``#### <answer>`` line."""

_NUMBER_RE = re.compile(
    r"(?P<sign>(?<![A-Za-z0-9_.)\]])[-\u2212])?\$?"
    r"(?<![0-9.])(?P<num>(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+)(?![0-9])"
)


def _to_decimal(text: str) -> Decimal | None:
    text = text.replace(",", "").rstrip(".")
    if not text or text in {"-", "."}:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def _fmt(value: Decimal) -> str:
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in {"-0", ""} else text


def extract_answer(text: str) -> str | None:
    """Return the number an answer gives (normalised, e.g. ``"1000"``, ``"-3"``, ``"0.5"``), or None.

    See the module docstring for the rules.
    """
    match = ANS_RE.search(text)
    if match:
        value = _to_decimal(match.group(1).strip())
        if value is not None:
            return _fmt(value)
    last = None
    for m in _NUMBER_RE.finditer(text):
        last = m
    if last is None:
        return None
    sign = "-" if last.group("sign") else ""
    value = _to_decimal(sign + last.group("num"))
    return None if value is None else _fmt(value)


def extract_gold(answer: str) -> str | None:
    """Normalise a gold final answer (``"2,125"`` -> ``"2125"``); also accepts a full ``####`` solution."""
    match = ANS_RE.search(answer)
    value = _to_decimal((match.group(1) if match else answer).strip())
    return None if value is None else _fmt(value)


def score(problem: Problem, answer: str) -> Score:
    """Score one answer: 1.0 iff its final number equals the gold final answer.

    ``detail`` is the extracted number (None when the answer has none). Pure and fast.
    """
    text = answer if isinstance(answer, str) else ("" if answer is None else str(answer))
    predicted = extract_answer(text)
    if predicted is not None:
        for gold in problem.answers:
            gold_value = extract_gold(gold)
            if gold_value is not None and Decimal(gold_value) == Decimal(predicted):
                return Score(value=1.0, detail=predicted)
    return Score(value=0.0, detail=predicted)
