"""HotpotQA scorer: the official answer EM and F1 (``hotpotqa/hotpot`` ``hotpot_evaluate_v1.py``).

Rules, as in the official ``normalize_answer``, ``f1_score`` and ``exact_match_score``:

1. Normalise both strings: lower-case, drop ASCII punctuation, replace the words a/an/the by a
   space, collapse whitespace.
2. EM = 1 iff the normalised strings are equal.
3. F1: if either normalised string is ``yes``, ``no`` or ``noanswer`` and they differ, F1 = 0
   (the yes/no/noanswer rule). Otherwise token-level F1 over the multisets of whitespace tokens
   (``Counter`` intersection); F1 = 0 when no token is shared, which includes a gold answer that
   normalises to nothing (``"!!!"``, ``"The The"``: F1 0 for every answer, EM 1 for an answer that
   also normalises to nothing).

``value`` is F1; ``metrics`` holds ``em``, ``f1``, ``precision`` and ``recall`` (max over the gold
answers, which for HotpotQA is one). The answer is scored as given: no extraction step.

Differences from AFlow/ScoreFlow (``benchmark/hotpotqa.py``): they compute the same token F1 but
without the yes/no/noanswer rule, so ``"no"`` against the gold ``"no way"`` gets 0.67 there and 0
here; at test time ScoreFlow reports a gpt-4o-mini 0/1 judgement instead of F1.
"""

from __future__ import annotations

from collections import Counter

from sf_bench.scorers._text import answer_text, squad_normalize
from sf_bench.types import Problem, Score

__all__ = ["exact_match", "f1_precision_recall", "score"]

_SPECIAL = ("yes", "no", "noanswer")


def f1_precision_recall(prediction: str, gold: str) -> tuple[float, float, float]:
    """Official HotpotQA answer F1, precision and recall of ``prediction`` against ``gold``."""
    pred_norm = squad_normalize(prediction)
    gold_norm = squad_normalize(gold)
    if pred_norm in _SPECIAL and pred_norm != gold_norm:
        return 0.0, 0.0, 0.0
    if gold_norm in _SPECIAL and pred_norm != gold_norm:
        return 0.0, 0.0, 0.0
    pred_tokens = pred_norm.split()
    gold_tokens = gold_norm.split()
    num_same = sum((Counter(pred_tokens) & Counter(gold_tokens)).values())
    if num_same == 0:
        return 0.0, 0.0, 0.0
    precision = num_same / len(pred_tokens)
    recall = num_same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall), precision, recall


def exact_match(prediction: str, gold: str) -> float:
    """Official HotpotQA answer EM (1.0 or 0.0)."""
    return 1.0 if squad_normalize(prediction) == squad_normalize(gold) else 0.0


def score(problem: Problem, answer: str) -> Score:
    """Score one answer: ``value`` = F1, ``metrics`` = em/f1/precision/recall. Pure and fast."""
    text = answer_text(answer)
    best_em = 0.0
    best = (0.0, 0.0, 0.0)
    for gold in problem.answers:
        best_em = max(best_em, exact_match(text, gold))
        prf = f1_precision_recall(text, gold)
        if prf[0] > best[0]:
            best = prf
    f1, precision, recall = best
    return Score(
        value=f1,
        metrics={"em": best_em, "f1": f1, "precision": precision, "recall": recall},
    )
