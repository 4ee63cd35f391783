r"""MATH scorer: last ``\boxed{}`` answer, Hendrycks normalised match OR math-verify equivalence.

Extraction: the content of the last ``\boxed{...}`` or ``\fbox{...}`` of the answer, braces
matched at any depth (``\boxed{\frac{\sqrt{3}}{2}}`` works); ``\boxed 5`` is accepted too. An
answer with no box is taken whole as the candidate (stripped of surrounding ``$``), and
math-verify then extracts from it as it documents (last LaTeX/expression). The gold answer is
the last box of the reference solution (``problem.answers``).

Equivalence, value 1.0 iff any of:

1. ``is_equiv`` of ``hendrycks/math`` (``modeling/math_equivalence.py`` @08e65fc): both strings
   normalised by ``_strip_string`` (drop newlines, ``\!``, ``\left``/``\right``, ``^\circ``,
   ``\$``, units after ``\text{ ``, ``%``; ``tfrac``/``dfrac`` -> ``frac``; ``\frac12`` ->
   ``\frac{1}{2}``; ``\sqrt3`` -> ``\sqrt{3}``; leading ``.5`` -> ``0.5``; ``0.5`` ->
   ``\frac{1}{2}``; ``a/b`` -> ``\frac{a}{b}`` for integers; a short ``k = `` prefix dropped;
   spaces removed) and compared as strings; if normalisation raises, the raw strings are
   compared (as the original does). Reproduced rule for rule, including its limits.
2. The same comparison after unwrapping ``\text{...}``, ``\textbf{...}``, ``\mathrm{...}``,
   ``\mbox{...}`` to their content and dropping LaTeX spacing commands (``\,``, ``\;``, ``\:``,
   ``\ ``): ``\text{(C)}`` = ``(C)``.
3. math-verify (Hugging Face, ``math_verify.verify(parse(gold), parse(answer))``, strict mode,
   float rounding 6 digits): symbolic and numeric equivalence (``\frac{\sqrt2}{2}`` =
   ``\sqrt{2}/2``, ``x^2+2x+1`` = ``(x+1)^2``, sets in any order, ``10\%`` = ``0.1``).

The symbolic check runs in a pool of helper processes (:mod:`sf_bench.scorers._symbolic`) with
a hard time limit (:data:`SYMBOLIC_TIMEOUT`), because math-verify's own timeout relies on
``signal.alarm`` and only works in a main thread; a check that runs out of time counts as not
equivalent and is reported in ``metrics["symbolic_timeout"]``. So :func:`score` is thread-safe
and deterministic except when that limit is hit.

``value`` is 0 or 1; ``detail`` is the extracted answer; ``metrics`` tells which test decided:
``string_match`` (rules 1-2), ``symbolic`` (rule 3, present only when it ran).

Differences from AFlow/ScoreFlow (``benchmark/math.py``): their box regex allows one nesting
level, so ``\boxed{\frac{\sqrt{3}}{2}}`` is missed in answers *and gold* and they fall back to
the last sentence; they have no ``_strip_string`` normalisation; numbers within 1e-3 count as
equal (``3.1416`` = ``\pi``; not here: math-verify rounds to 6 digits); sympy ``simplify`` runs
with no time limit; at test time ScoreFlow reports a gpt-4o-mini 0/1 judgement instead.
"""

from __future__ import annotations

import re

from sf_bench.scorers import _symbolic
from sf_bench.scorers._text import last_boxed_answer
from sf_bench.types import Problem, Score

__all__ = ["SYMBOLIC_TIMEOUT", "extract_answer", "is_equiv", "score", "strip_string"]

SYMBOLIC_TIMEOUT = _symbolic.DEFAULT_TIMEOUT
"""Seconds one math-verify check may take before it is killed and counted as not equivalent
(``sf_bench.scorers._symbolic.DEFAULT_TIMEOUT``, read at each call)."""


class _Unnormalisable(Exception):
    """Raised where the original ``_strip_string`` raises; ``is_equiv`` then compares raw strings."""


def _fix_fracs(string: str) -> str:
    parts = string.split("\\frac")
    out = parts[0]
    for part in parts[1:]:
        out += "\\frac"
        if not part:
            raise _Unnormalisable("\\frac at the end")  # the original indexes part[0]
        if part[0] == "{":
            out += part
            continue
        if len(part) < 2:
            return string  # the original gives up and returns its input unchanged
        a, b, rest = part[0], part[1], part[2:]
        out += "{" + a + "}{" + b + "}" + rest if b != "{" else "{" + a + "}" + b + rest
    return out


def _fix_a_slash_b(string: str) -> str:
    pieces = string.split("/")
    if len(pieces) != 2:
        return string
    try:
        a, b = int(pieces[0]), int(pieces[1])
    except ValueError:
        return string
    if string != f"{a}/{b}":
        return string
    return "\\frac{" + str(a) + "}{" + str(b) + "}"


def _remove_right_units(string: str) -> str:
    if "\\text{ " in string:
        pieces = string.split("\\text{ ")
        if len(pieces) != 2:
            raise _Unnormalisable("several \\text{ units")
        return pieces[0]
    return string


def _fix_sqrt(string: str) -> str:
    if "\\sqrt" not in string:
        return string
    pieces = string.split("\\sqrt")
    out = pieces[0]
    for piece in pieces[1:]:
        if not piece:
            raise _Unnormalisable("\\sqrt at the end")
        out += "\\sqrt" + piece if piece[0] == "{" else "\\sqrt{" + piece[0] + "}" + piece[1:]
    return out


def strip_string(string: str) -> str:
    """Hendrycks' ``_strip_string`` normalisation (see module docstring, rule 1).

    Raises:
        _Unnormalisable: Where the original raises (e.g. two ``\\text{ `` units).
    """
    string = string.replace("\n", "").replace("\\!", "").replace("\\\\", "\\")
    string = string.replace("tfrac", "frac").replace("dfrac", "frac")
    string = string.replace("\\left", "").replace("\\right", "")
    string = string.replace("^{\\circ}", "").replace("^\\circ", "")
    string = string.replace("\\$", "")
    string = _remove_right_units(string)
    string = string.replace("\\%", "").replace("%", "")
    string = string.replace(" .", " 0.").replace("{.", "{0.")
    if not string:
        return string
    if string[0] == ".":
        string = "0" + string
    sides = string.split("=")
    if len(sides) == 2 and len(sides[0]) <= 2:
        string = sides[1]
    string = _fix_sqrt(string)
    string = string.replace(" ", "")
    string = _fix_fracs(string)
    if string == "0.5":
        string = "\\frac{1}{2}"
    return _fix_a_slash_b(string)


def is_equiv(str1: str | None, str2: str | None) -> bool:
    """Hendrycks' ``is_equiv``: normalised string equality, raw equality if normalising fails."""
    if str1 is None and str2 is None:
        return True
    if str1 is None or str2 is None:
        return False
    try:
        return strip_string(str1) == strip_string(str2)
    except _Unnormalisable:
        return str1 == str2


_TEXT_WRAPPER = re.compile(r"\\(?:text|textbf|textrm|mathrm|mbox)\s*\{([^{}]*)\}")
_SPACING = re.compile(r"\\[,;: ]")


def _unwrap(string: str) -> str:
    previous = None
    while previous != string:
        previous = string
        string = _TEXT_WRAPPER.sub(lambda m: m.group(1), string)
    return _SPACING.sub("", string)


def extract_answer(answer: str) -> tuple[str, bool]:
    """Return ``(candidate, boxed)``: the last box's content, or the whole stripped answer."""
    boxed = last_boxed_answer(answer)
    if boxed is not None:
        return boxed, True
    text = answer.strip()
    if len(text) >= 2 and text.startswith("$") and text.endswith("$"):
        text = text.strip("$").strip()
    return text, False


def score(problem: Problem, answer: str) -> Score:
    """Score one answer: 1.0 iff equivalent to the gold answer (see module docstring).

    Thread-safe; the symbolic check is bounded by :data:`SYMBOLIC_TIMEOUT` seconds.
    """
    text = answer if isinstance(answer, str) else ("" if answer is None else str(answer))
    candidate, boxed = extract_answer(text)
    if not candidate:
        return Score(value=0.0, metrics={"string_match": 0.0}, detail=candidate)
    for gold in problem.answers:
        if is_equiv(candidate, gold) or is_equiv(_unwrap(candidate), _unwrap(gold)):
            return Score(value=1.0, metrics={"string_match": 1.0}, detail=candidate)
    metrics = {"string_match": 0.0, "symbolic": 0.0}
    for gold in problem.answers:
        verdict = _symbolic.equivalent(gold, candidate if boxed else text, pred_is_boxed_content=boxed)
        if verdict is None:
            metrics["symbolic_timeout"] = 1.0
        elif verdict:
            metrics["symbolic"] = 1.0
            return Score(value=1.0, metrics=metrics, detail=candidate)
    return Score(value=0.0, metrics=metrics, detail=candidate)
