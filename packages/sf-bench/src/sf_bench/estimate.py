"""A mean with its 95% bootstrap confidence interval: what every summary and comparison reports.

Its own module so that :mod:`sf_bench.report` (the tables) and :mod:`sf_bench.compare` (paired
statistics) both use it without importing each other.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:  # numpy is imported where it is used (import sf_bench stays light)
    import numpy as np
    from numpy.typing import NDArray

__all__ = ["BOOTSTRAP_RESAMPLES", "NAN", "Estimate", "bootstrap_ci"]

BOOTSTRAP_RESAMPLES = 2000
"""Resamples of every bootstrap interval (seeded, so a summary is reproducible)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Estimate:
    """A mean with its 95% bootstrap confidence interval (``nan`` when there is no data)."""

    value: float
    low: float
    high: float

    def to_json(self) -> dict[str, float | None]:
        """``{"value", "low", "high"}`` with ``None`` for NaN."""
        return {
            k: (None if math.isnan(v) else round(v, 6))
            for k, v in (("value", self.value), ("low", self.low), ("high", self.high))
        }

    def fmt(self, ci: bool = True) -> str:
        """``0.812 [0.760, 0.858]`` (or ``-``)."""
        if math.isnan(self.value):
            return "-"
        return f"{self.value:.3f} [{self.low:.3f}, {self.high:.3f}]" if ci else f"{self.value:.3f}"


NAN = Estimate(value=math.nan, low=math.nan, high=math.nan)


def bootstrap_ci(values: Sequence[float], *, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0) -> Estimate:
    """Mean of ``values`` with a 95% percentile-bootstrap interval (resampling the values)."""
    n = len(values)
    if n == 0:
        return NAN
    mean = math.fsum(values) / n
    if n == 1:
        return Estimate(value=mean, low=mean, high=mean)
    import numpy as np

    rng = np.random.default_rng(seed)
    arr = np.asarray(values, dtype=float)
    idx = rng.integers(0, n, size=(resamples, n))
    means = arr[idx].mean(axis=1)
    bounds = cast("NDArray[np.float64]", np.percentile(means, [2.5, 97.5]))  # stubs: unknown here
    return Estimate(value=mean, low=float(bounds[0]), high=float(bounds[1]))
