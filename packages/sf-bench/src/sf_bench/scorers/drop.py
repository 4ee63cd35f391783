"""DROP scorer: the official EM and F1 of ``allennlp_rc/eval/drop_eval.py`` (also in simple-evals).

Rules (``allenai/allennlp-reading-comprehension`` @d4a19b5c, ``drop_eval.py``: ``_normalize_answer``,
``_answer_to_bags``, ``_align_bags``, ``_compute_f1``, ``_match_numbers_if_present``,
``get_metrics``, and the max over gold answers of ``evaluate_json``):

1. An answer is a list of spans (a plain string is one span). Each span is split into tokens on
   spaces and hyphens; each token is lower-cased, stripped of punctuation unless it parses as a
   number (``float()``), turned into ``str(float(token))`` if it is a number (so ``2``, ``2.0``
   and ``2.00`` agree), stripped of the articles a/an/the, and whitespace-collapsed; empty
   tokens are dropped. A span's bag is its set of normalised tokens.
2. EM = 1 iff the predicted and gold spans, normalised, are the same set with the same count.
3. F1: the predicted and gold bags are aligned one-to-one to maximise the total F1 (the official
   code uses scipy's ``linear_sum_assignment``; :func:`_max_assignment` is an exact Hungarian
   algorithm, so the optimum and thus the score are the same). A pair scores 0 unless the
   gold bag has no number or shares at least one number with the predicted bag (the
   numbers-must-match rule). Bag F1 is the set-based F1
   (an empty bag has precision/recall 1). The answer's F1 is the mean over
   ``max(len(gold), len(predicted))`` slots, rounded to 2 decimals as the official code does.
4. The score of a question is the max EM and the max F1 over its gold answers, ignoring blank
   ones (``evaluate_json`` / simple-evals ``drop_metric``).

``value`` is F1; ``metrics`` holds ``em`` and ``f1``; ``detail`` is the gold answer that gave the
best F1. The answer is scored as given (one span): no extraction of an ``Answer:`` line.

What simple-evals' flattened file loses (the data every split here uses): each gold answer is
one string, so multi-span answers (e.g. three age groups joined by "and") are single spans and
lose the per-span alignment; dates are already flattened to ``"day month year"`` strings;
validated answers are merged into the ``|`` alternatives; query ids and answer types are gone,
so per-type breakdowns cannot be made. With single-span gold and a single-string prediction the
official formula reduces to bag-of-words F1 with the number rule, rounded to 2 decimals.

Differences from AFlow/ScoreFlow (``benchmark/drop.py``): they use SQuAD-style token F1 (no
number normalisation, no hyphen split, no numbers-must-match rule, no rounding, multiset
rather than set), and split the *prediction* on ``|`` too, taking the best part, which rewards
answering several candidates at once; at test time ScoreFlow reports a gpt-4o-mini 0/1 judgement.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from sf_bench.scorers._text import (
    PUNCTUATION,
    answer_text,
    is_number,
    remove_articles,
    white_space_fix,
)
from sf_bench.types import Problem, Score

__all__ = ["get_metrics", "normalize_answer", "score"]

_TOKEN_SPLIT = re.compile(" |-")


def _remove_punc(text: str) -> str:
    if is_number(text):
        return text
    return "".join(ch for ch in text if ch not in PUNCTUATION)


def _normalize_number(text: str) -> str:
    return str(float(text)) if is_number(text) else text


def normalize_answer(text: str) -> str:
    """Official DROP normalisation of one span (see rule 1 of the module docstring)."""
    parts = [
        white_space_fix(remove_articles(_normalize_number(_remove_punc(token.lower()))))
        for token in _TOKEN_SPLIT.split(text)
    ]
    return " ".join(part for part in parts if part.strip()).strip()


def _answer_to_bags(answer: str | Sequence[str]) -> tuple[list[str], list[set[str]]]:
    spans = [answer] if isinstance(answer, str) else list(answer)
    normalized = [normalize_answer(span) for span in spans]
    return normalized, [set(span.split()) for span in normalized]


def _compute_f1(predicted_bag: set[str], gold_bag: set[str]) -> float:
    intersection = len(gold_bag & predicted_bag)
    precision = 1.0 if not predicted_bag else intersection / len(predicted_bag)
    recall = 1.0 if not gold_bag else intersection / len(gold_bag)
    if precision == 0.0 and recall == 0.0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def _match_numbers_if_present(gold_bag: set[str], predicted_bag: set[str]) -> bool:
    gold_numbers = {word for word in gold_bag if is_number(word)}
    predicted_numbers = {word for word in predicted_bag if is_number(word)}
    return (not gold_numbers) or bool(gold_numbers & predicted_numbers)


def _max_assignment(scores: list[list[float]]) -> list[tuple[int, int]]:
    """Pairs (row, column) of a one-to-one assignment maximising the total of ``scores``.

    Exact (Hungarian algorithm with potentials, O(n^2 m)); every row is assigned when
    rows <= columns, else every column. Same optimum as scipy's ``linear_sum_assignment(-scores)``.
    """
    n_rows = len(scores)
    n_cols = len(scores[0]) if n_rows else 0
    if n_rows == 0 or n_cols == 0:
        return []
    transposed = n_rows > n_cols
    if transposed:
        scores = [list(col) for col in zip(*scores, strict=True)]
        n_rows, n_cols = n_cols, n_rows
    # Minimise cost = -score; rows 1..n, columns 1..m (index 0 is a sentinel).
    inf = float("inf")
    u = [0.0] * (n_rows + 1)
    v = [0.0] * (n_cols + 1)
    owner = [0] * (n_cols + 1)  # owner[j] = row assigned to column j
    way = [0] * (n_cols + 1)
    for i in range(1, n_rows + 1):
        owner[0] = i
        j0 = 0
        minv = [inf] * (n_cols + 1)
        used = [False] * (n_cols + 1)
        while True:
            used[j0] = True
            i0 = owner[j0]
            delta = inf
            j1 = 0
            for j in range(1, n_cols + 1):
                if not used[j]:
                    cur = -scores[i0 - 1][j - 1] - u[i0] - v[j]
                    if cur < minv[j]:
                        minv[j] = cur
                        way[j] = j0
                    if minv[j] < delta:
                        delta = minv[j]
                        j1 = j
            for j in range(n_cols + 1):
                if used[j]:
                    u[owner[j]] += delta
                    v[j] -= delta
                else:
                    minv[j] -= delta
            j0 = j1
            if owner[j0] == 0:
                break
        while True:
            j1 = way[j0]
            owner[j0] = owner[j1]
            j0 = j1
            if j0 == 0:
                break
    pairs = [(owner[j] - 1, j - 1) for j in range(1, n_cols + 1) if owner[j] != 0]
    if transposed:
        pairs = [(col, row) for row, col in pairs]
    return sorted(pairs)


def _align_bags(predicted: list[set[str]], gold: list[set[str]]) -> list[float]:
    scores = [
        [_compute_f1(pred, g) if _match_numbers_if_present(g, pred) else 0.0 for pred in predicted]
        for g in gold
    ]
    max_scores = [0.0] * max(len(gold), len(predicted))
    for row, col in _max_assignment(scores):
        max_scores[row] = max(max_scores[row], scores[row][col])
    return max_scores


def _round2(value: float) -> float:
    # numpy's round(x, 2) (what the official ``round(np.float64, 2)`` does): scale, round half
    # to even, unscale.
    return round(value * 100.0) / 100.0


def get_metrics(predicted: str | Sequence[str], gold: str | Sequence[str]) -> tuple[float, float]:
    """Official DROP ``(exact_match, f1)`` of one prediction against one gold answer.

    Both may be a string (one span) or a sequence of spans.
    """
    predicted_spans, predicted_bags = _answer_to_bags(predicted)
    gold_spans, gold_bags = _answer_to_bags(gold)
    em = 1.0 if set(predicted_spans) == set(gold_spans) and len(predicted_spans) == len(gold_spans) else 0.0
    per_bag = _align_bags(predicted_bags, gold_bags)
    f1 = sum(per_bag) / len(per_bag) if per_bag else 0.0
    return em, _round2(f1)


def score(problem: Problem, answer: str) -> Score:
    """Score one answer: ``value`` = max F1 over the gold answers, ``metrics`` = em/f1. Pure, fast."""
    text = answer_text(answer)
    best_em = 0.0
    best_f1 = 0.0
    best_gold: str | None = None
    for gold in problem.answers:
        if not gold.strip():
            continue
        em, f1 = get_metrics(text, gold)
        best_em = max(best_em, em)
        if best_gold is None or f1 > best_f1:
            best_f1, best_gold = f1, gold
    return Score(value=best_f1, metrics={"em": best_em, "f1": best_f1}, detail=best_gold)
