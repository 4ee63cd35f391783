"""Paired statistics between two runs: is B better than A on the problems both answered?

Two runs of the same split answer the same problems, so the honest comparison is *paired*:
per problem, the difference ``d = score_B − score_A`` of the problem's score (the mean over
its samples and repeats, as in the summary), over the problems both runs scored. Problems
only one run scored are counted and left out. For each dataset:

- ``difference``: the mean of ``d`` with a 95% **paired percentile-bootstrap** interval
  (resampling problems with replacement, :data:`~sf_bench.report.BOOTSTRAP_RESAMPLES`
  resamples, seed 0, so a rerun prints the same interval);
- ``p_sign``: the exact two-sided **sign test** on the problems where the runs differ (ties
  dropped; on 0/1 scores this is McNemar's exact test); equal to ``scipy.stats.binomtest(wins,
  wins + losses, 0.5).pvalue``;
- ``p_permutation``: the two-sided paired **sign-flip permutation test** of the mean
  difference, exact (every sign pattern) when at most :data:`EXACT_LIMIT` problems differ,
  else :data:`PERMUTATIONS` random patterns with seed 0; it follows ``scipy.stats.
  permutation_test(..., permutation_type="samples")`` (same p-value where exact);
- ``cost_difference``: mean per-problem US dollars of B minus A (generator + executor, all
  samples and repeats), and each run's total over the shared problems;
- ``verdict``: ``significant`` when the interval excludes 0, ``not significant`` when it
  contains 0, or why no verdict is given (no shared problems, different metrics).

Records that are not scores (``scorer_error``: scoring failed and is redone on resume) are
left out of both runs.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, cast

from sf_bench.records import Record

if TYPE_CHECKING:  # numpy is imported where it is used (import sf_bench stays light)
    import numpy as np
    from numpy.typing import NDArray

__all__ = [
    "EXACT_LIMIT",
    "PERMUTATIONS",
    "PairedComparison",
    "Verdict",
    "compare",
    "paired_bootstrap",
    "permutation_p",
    "problem_scores",
    "sign_test_p",
]

EXACT_LIMIT = 16
"""Most differing problems for which the permutation test enumerates every sign pattern."""
PERMUTATIONS = 20_000
"""Random sign patterns of the permutation test beyond :data:`EXACT_LIMIT`."""
_NOT_SCORES = frozenset({"scorer_error", "infra_error"})
"""Record statuses that carry no score of the system (infrastructure failed; redone on resume)."""


def problem_scores(records: Iterable[Record], k: int | None = None) -> dict[str, tuple[float, float]]:
    """``{problem id: (score, cost)}``: each problem's mean score and total cost.

    The mean is over the problem's records (samples ``< k`` when given); records that are not
    scores are left out.
    """
    scores: dict[str, list[float]] = {}
    costs: dict[str, float] = {}
    for r in records:
        if (k is not None and r.sample >= k) or str(r.status) in _NOT_SCORES:
            continue
        scores.setdefault(r.problem_id, []).append(r.score)
        costs[r.problem_id] = costs.get(r.problem_id, 0.0) + r.cost
    return {pid: (math.fsum(v) / len(v), costs[pid]) for pid, v in scores.items()}


def sign_test_p(wins: int, losses: int) -> float:
    """Exact two-sided sign test: ``P`` of a split at least as uneven as ``wins``/``losses``.

    Under a fair coin; 1.0 when there is nothing to test.
    """
    n = wins + losses
    if n == 0:
        return 1.0
    low = min(wins, losses)
    tail = math.fsum(math.comb(n, i) for i in range(low + 1)) / 2.0**n
    return min(1.0, 2.0 * tail)


def permutation_p(
    diffs: Sequence[float], *, resamples: int = PERMUTATIONS, seed: int = 0
) -> tuple[float, bool]:
    """Two-sided paired sign-flip permutation p-value of ``mean(diffs)``; ``(p, exact)``.

    Exact when at most :data:`EXACT_LIMIT` differences are non-zero (zeros do not change the
    p-value), else ``resamples`` random sign patterns (p-values counted with the observed one,
    ``(hits + 1) / (resamples + 1)``). Ties with the observed mean are resolved as scipy does
    (relative tolerance ``100 · machine epsilon``).
    """
    import numpy as np

    d = np.asarray([x for x in diffs if x != 0.0], dtype=float)
    n_all = len(diffs)
    if n_all == 0 or d.size == 0:
        return 1.0, True
    observed = d.sum() / n_all
    null: NDArray[np.float64]
    if d.size <= EXACT_LIMIT:
        # every sign pattern as rows of +-1; numpy's stubs leave this broadcast shift unknown
        patterns = cast(
            "NDArray[np.int64]", ((np.arange(2**d.size)[:, None] >> np.arange(d.size)) & 1) * 2 - 1
        )
        null = (patterns * d).sum(axis=1) / n_all
        adjustment, total, exact = 0, null.size, True
    else:
        rng = np.random.default_rng(seed)
        signs = rng.choice(np.array([-1.0, 1.0]), size=(resamples, d.size))
        null = (signs * d).sum(axis=1) / n_all
        adjustment, total, exact = 1, resamples, False
    gamma = abs(np.finfo(float).eps * 100 * observed)
    less = ((null <= observed + gamma).sum() + adjustment) / (total + adjustment)
    greater = ((null >= observed - gamma).sum() + adjustment) / (total + adjustment)
    return float(min(1.0, 2.0 * min(less, greater))), exact


def paired_bootstrap(
    diffs: Sequence[float], *, resamples: int | None = None, seed: int = 0
) -> tuple[float, float, float]:
    """``(mean, low, high)``: the mean difference and its 95% percentile-bootstrap interval.

    Problems are resampled with replacement; NaNs for no data, the point for one problem.
    """
    from sf_bench.estimate import BOOTSTRAP_RESAMPLES, bootstrap_ci

    est = bootstrap_ci(list(diffs), resamples=resamples or BOOTSTRAP_RESAMPLES, seed=seed)
    return est.value, est.low, est.high


class Verdict(StrEnum):
    """What a paired comparison concludes."""

    SIGNIFICANT = "significant"
    """The 95% interval of the difference excludes 0."""
    NOT_SIGNIFICANT = "not significant"
    """The interval contains 0: the data do not show a difference."""
    NOT_COMPARABLE = "not comparable"
    """The runs were scored with different metrics (``--judge`` on one side only)."""
    TOO_FEW_PROBLEMS = "too few problems"
    """Fewer than 2 shared problems."""
    NO_SHARED_PROBLEMS = "no shared problems"
    """The runs scored no problem in common (another split or --limit?)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PairedComparison:
    """Run ``run`` against ``baseline`` on one dataset (see the module docstring)."""

    dataset: str
    baseline: str
    """Label of run A (the first DIR of ``sf bench report``)."""
    run: str
    """Label of run B."""
    shared: int
    """Problems both runs scored: the pairs every statistic is over."""
    only_baseline: int = 0
    only_run: int = 0
    baseline_score: float = math.nan
    """A's mean score over the shared problems."""
    run_score: float = math.nan
    difference: float = math.nan
    """Mean of B − A over the shared problems."""
    low: float = math.nan
    """2.5th percentile of the paired bootstrap of the difference."""
    high: float = math.nan
    """97.5th percentile."""
    wins: int = 0
    """Shared problems where B scored higher."""
    losses: int = 0
    ties: int = 0
    p_sign: float = math.nan
    p_permutation: float = math.nan
    permutation_exact: bool = True
    baseline_cost: float = 0.0
    """A's US dollars over the shared problems."""
    run_cost: float = 0.0
    cost_difference: float = math.nan
    """Mean per-problem US dollars of B − A."""
    metrics: tuple[str, str] = ("official", "official")
    """The metric each run was scored with."""
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def comparable(self) -> bool:
        """Both runs scored shared problems with the same metric."""
        return self.shared > 0 and self.metrics[0] == self.metrics[1]

    @property
    def significant(self) -> bool:
        """The 95% interval of the difference excludes 0 (never with fewer than 2 shared problems)."""
        if not self.comparable or self.shared < 2 or math.isnan(self.low):
            return False
        return self.low > 0.0 or self.high < 0.0

    @property
    def verdict(self) -> Verdict:
        """:class:`Verdict`: significant or not, or why there is none."""
        if self.shared == 0:
            return Verdict.NO_SHARED_PROBLEMS
        if self.metrics[0] != self.metrics[1]:
            return Verdict.NOT_COMPARABLE
        if self.shared < 2:
            return Verdict.TOO_FEW_PROBLEMS
        return Verdict.SIGNIFICANT if self.significant else Verdict.NOT_SIGNIFICANT

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict (NaN as ``None``)."""

        def num(x: float) -> float | None:
            return None if math.isnan(x) else round(x, 6)

        return {
            "dataset": self.dataset,
            "baseline": self.baseline,
            "run": self.run,
            "shared": self.shared,
            "only_baseline": self.only_baseline,
            "only_run": self.only_run,
            "baseline_score": num(self.baseline_score),
            "run_score": num(self.run_score),
            "difference": {"value": num(self.difference), "low": num(self.low), "high": num(self.high)},
            "wins": self.wins,
            "losses": self.losses,
            "ties": self.ties,
            "p_sign": num(self.p_sign),
            "p_permutation": num(self.p_permutation),
            "permutation_exact": self.permutation_exact,
            "baseline_cost": round(self.baseline_cost, 6),
            "run_cost": round(self.run_cost, 6),
            "cost_difference": num(self.cost_difference),
            "metric_baseline": self.metrics[0],
            "metric_run": self.metrics[1],
            "significant": self.significant,
            "verdict": str(self.verdict),
            "notes": list(self.notes),
        }


def compare(
    dataset: str,
    baseline: Mapping[str, tuple[float, float]],
    run: Mapping[str, tuple[float, float]],
    *,
    labels: tuple[str, str] = ("A", "B"),
    metrics: tuple[str, str] = ("official", "official"),
    notes: Sequence[str] = (),
    seed: int = 0,
) -> PairedComparison:
    """Paired statistics of ``run`` against ``baseline``.

    Each is ``{problem id: (score, cost)}``, see :func:`problem_scores`.
    """
    shared = sorted(set(baseline) & set(run))
    common: dict[str, Any] = {
        "dataset": dataset,
        "baseline": labels[0],
        "run": labels[1],
        "shared": len(shared),
        "only_baseline": len(set(baseline) - set(run)),
        "only_run": len(set(run) - set(baseline)),
        "metrics": metrics,
        "notes": tuple(notes),
    }
    if metrics[0] != metrics[1]:
        common["notes"] = (f"metric {metrics[0]} vs {metrics[1]}", *common["notes"])
    if not shared:
        return PairedComparison(**common)
    diffs = [run[p][0] - baseline[p][0] for p in shared]
    mean, low, high = paired_bootstrap(diffs, seed=seed)
    wins = sum(1 for d in diffs if d > 0)
    losses = sum(1 for d in diffs if d < 0)
    p_perm, exact = permutation_p(diffs, seed=seed)
    base_cost = math.fsum(baseline[p][1] for p in shared)
    run_cost = math.fsum(run[p][1] for p in shared)
    return PairedComparison(
        **common,
        baseline_score=math.fsum(baseline[p][0] for p in shared) / len(shared),
        run_score=math.fsum(run[p][0] for p in shared) / len(shared),
        difference=mean,
        low=low,
        high=high,
        wins=wins,
        losses=losses,
        ties=len(diffs) - wins - losses,
        p_sign=sign_test_p(wins, losses),
        p_permutation=p_perm,
        permutation_exact=exact,
        baseline_cost=base_cost,
        run_cost=run_cost,
        cost_difference=(run_cost - base_cost) / len(shared),
    )
