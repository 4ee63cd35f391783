r"""MATH scorers: two named metrics, ``equiv`` (the default) and ``official``.

Every MATH score carries both verdicts in ``Score.metrics`` (``{"equiv": 0/1, "official": 0/1}``);
``value`` is the verdict of the metric the run chose, and the summary's ``metric`` column and
``run.json``'s ``scoring`` name it.

``official``: hendrycks/math's evaluation exactly (``modeling/eval_math_gpt.py``:
``is_equiv(remove_boxed(last_boxed_only_string(output)), remove_boxed(last_boxed_only_string(solution)))``
with ``modeling/dataset/util.py:last_boxed_only_string`` and ``math_equivalence.is_equiv``),
quirks included: the last ``\boxed`` wins over any later ``\fbox``; ``remove_boxed`` accepts only
``\boxed{...}``, so an answer with no box, ``\fbox{5}`` or ``\boxed 5`` has no answer (None) and
scores 0 (1 only if the gold also has none: ``is_equiv(None, None)`` is True).

``equiv``: is_equiv OR math-verify, on a wider extraction. Value 1.0 iff any of:

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
   float rounding 6 digits), both sides given as ``\boxed{...}``: symbolic and numeric
   equivalence (``\frac{\sqrt2}{2}`` = ``\sqrt{2}/2``, ``x^2+2x+1`` = ``(x+1)^2``, sets in any
   order, ``10\%`` = ``0.1``).

Extraction for ``equiv`` (one rule for every form of answer):

- with a box: the content of the last ``\boxed{...}`` or ``\fbox{...}``, braces matched at any
  depth (``\boxed{\frac{\sqrt{3}}{2}}``); ``\boxed 5`` is accepted too;
- with no box, the **final-answer span** of the last non-empty line (markdown ``**`` and a
  closing "I hope it is correct." of the Minerva format ignored): its last inline math
  (``$...$``, ``\(...\)``, ``\[...\]``) if it has any, else the text after its last word ``is`` or
  ``:`` plus a space ("The answer is 5.5.", "Answer: 3:2"), else the whole line; then one trailing period
  and surrounding ``$`` are dropped. "The answer is 5.5." gives ``5.5`` and "The answer is
  \frac{5\pi}{4}." gives ``\frac{5\pi}{4}``; the span is then scored exactly like a box's
  content (rules 1-3). An answer whose final line does not state the answer (it is mid-text,
  or followed by more prose) scores 0: box it.

``equiv`` accepts everything ``official`` accepts (an answer ``official`` accepts scores 1
under ``equiv`` too, whatever the extractions read), and is more lenient in these cases:

- unboxed answers (the final-answer span above), ``\fbox{...}`` and ``\boxed 5``;
- ``\text{}``-style wrappers and LaTeX spacing (rule 2): ``\text{(C)}`` = ``(C)``;
- mathematically equal forms that normalise differently (rule 3): ``\sqrt{3}/2`` =
  ``\frac{\sqrt{3}}{2}``, ``(x+1)^2`` = ``x^2+2x+1``, ``\{2,1\}`` = ``\{1,2\}``, ``0.25`` =
  ``\frac14``, ``10\%`` = ``0.1``, ``2\pi`` = ``\pi\cdot 2``.

The symbolic check runs in a pool of helper processes (:mod:`sf_bench.scorers._symbolic`) with
a hard time limit (:data:`SYMBOLIC_TIMEOUT`), because math-verify's own timeout relies on
``signal.alarm`` and only works in a main thread; a check that runs out of time counts as not
equivalent and is reported in ``metrics["symbolic_timeout"]``. So :func:`score` is thread-safe
and deterministic except when that limit is hit.

``detail`` is the extracted answer; ``metrics`` also tells which test decided ``equiv``:
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
from sf_bench.scorers._text import answer_text, last_boxed_answer
from sf_bench.types import Problem, Score

__all__ = [
    "METRICS",
    "SCORERS",
    "SYMBOLIC_TIMEOUT",
    "extract_answer",
    "final_answer_span",
    "is_equiv",
    "is_official_correct",
    "official_extract",
    "score",
    "score_official",
    "strip_string",
]

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
    r"""Hendrycks' ``_strip_string`` normalisation (see module docstring, rule 1).

    Raises:
        _Unnormalisable: Where the original raises (e.g. two ``\text{ `` units).
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


_INLINE_MATH = re.compile(r"\$\$(.+?)\$\$|\$(.+?)\$|\\\((.+?)\\\)|\\\[(.+?)\\\]")
_MINERVA_TAIL = re.compile(r"\s*I hope it is correct\.?\s*$", re.IGNORECASE)
_LEAD = re.compile(r"\bis\b\s*|:\s+", re.IGNORECASE)


def final_answer_span(answer: str) -> str:
    """The final-answer span of an answer with no box (see the module docstring)."""
    lines = [line for line in answer.strip().splitlines() if line.strip()]
    if not lines:
        return ""
    line = _MINERVA_TAIL.sub("", lines[-1].replace("**", "")).strip()
    maths = [next(g for g in m.groups() if g is not None) for m in _INLINE_MATH.finditer(line)]
    if maths:
        span = maths[-1]
    else:
        leads = list(_LEAD.finditer(line))
        span = line[leads[-1].end() :] if leads else line
    span = span.strip()
    if span.endswith("."):
        span = span[:-1].rstrip()
    if len(span) >= 2 and span.startswith("$") and span.endswith("$"):
        span = span.strip("$").strip()
    return span


def extract_answer(answer: str) -> tuple[str, bool]:
    """Return ``(candidate, boxed)`` for ``equiv``: the last box's content, or the final-answer span."""
    boxed = last_boxed_answer(answer)
    if boxed is not None:
        return boxed, True
    return final_answer_span(answer), False


def hendrycks_last_boxed_only_string(string: str) -> str | None:
    r"""``modeling/dataset/util.py:last_boxed_only_string`` of hendrycks/math, rule for rule.

    The last ``\boxed`` (only if there is none, the last ``\fbox``), up to the brace that
    closes the first ``{`` after it (wherever that is); None when there is no command or the
    braces never balance.
    """
    idx = string.rfind("\\boxed")
    if idx < 0:
        idx = string.rfind("\\fbox")
        if idx < 0:
            return None
    depth = 0
    for i in range(idx, len(string)):
        if string[i] == "{":
            depth += 1
        elif string[i] == "}":
            depth -= 1
            if depth == 0:
                return string[idx : i + 1]
    return None


def hendrycks_remove_boxed(s: str | None) -> str | None:
    r"""``remove_boxed`` of hendrycks/math: the content of ``\boxed{...}``, else None."""
    left = "\\boxed{"
    if s is None or not s.startswith(left) or not s.endswith("}"):
        return None
    return s[len(left) : -1]


def official_extract(text: str) -> str | None:
    """hendrycks/math's answer of ``text``: ``remove_boxed(last_boxed_only_string(text))``."""
    return hendrycks_remove_boxed(hendrycks_last_boxed_only_string(text))


def _official_gold(problem: Problem) -> str | None:
    if problem.reference and ("\\boxed" in problem.reference or "\\fbox" in problem.reference):
        return official_extract(problem.reference)
    return problem.answers[0] if problem.answers else None


def is_official_correct(problem: Problem, answer: str) -> bool:
    """The ``official`` verdict (hendrycks/math ``eval_math_gpt.py``): see the module docstring."""
    return is_equiv(official_extract(answer), _official_gold(problem))


def _equiv(problem: Problem, text: str) -> tuple[bool, dict[str, float], str]:
    candidate, _ = extract_answer(text)
    if not candidate:
        return False, {"string_match": 0.0}, candidate
    for gold in problem.answers:
        if is_equiv(candidate, gold) or is_equiv(_unwrap(candidate), _unwrap(gold)):
            return True, {"string_match": 1.0}, candidate
    metrics = {"string_match": 0.0, "symbolic": 0.0}
    for gold in problem.answers:
        verdict = _symbolic.equivalent(gold, candidate, pred_is_boxed_content=True)
        if verdict is None:
            metrics["symbolic_timeout"] = 1.0
        elif verdict:
            metrics["symbolic"] = 1.0
            return True, metrics, candidate
    return False, metrics, candidate


def _both(problem: Problem, answer: object) -> tuple[dict[str, float], str]:
    text = answer_text(answer)
    official = is_official_correct(problem, text)
    if official:  # equiv accepts everything official accepts, whatever the two extractions read
        candidate = extract_answer(text)[0]
        return {"string_match": 1.0, "equiv": 1.0, "official": 1.0}, candidate
    equiv, metrics, candidate = _equiv(problem, text)
    return {**metrics, "equiv": float(equiv), "official": float(official)}, candidate


def score(problem: Problem, answer: str) -> Score:
    """``equiv`` (the default): 1.0 iff equivalent to the gold answer (see the module docstring).

    Thread-safe; the symbolic check is bounded by :data:`SYMBOLIC_TIMEOUT` seconds.
    ``metrics`` holds both metrics' verdicts; ``detail`` is the extracted answer.
    """
    metrics, candidate = _both(problem, answer)
    return Score(value=metrics["equiv"], metrics=metrics, detail=candidate)


def score_official(problem: Problem, answer: str) -> Score:
    """``official``: hendrycks/math's verdict exactly; ``metrics`` holds both verdicts."""
    metrics, _ = _both(problem, answer)
    text = answer_text(answer)
    return Score(value=metrics["official"], metrics=metrics, detail=official_extract(text))


METRICS = ("equiv", "official")
"""This dataset's metric names; the first is the default."""

SCORERS = {"equiv": score, "official": score_official}
"""Scorer per metric name (:data:`METRICS`)."""
