"""Reports of runs: summaries, tables, the paired comparison of runs and the PNG plot.

Summaries are in :mod:`sf_bench.summary` (where each metric is defined), tables in
:mod:`sf_bench.tables`, the paired comparison of runs and the PNG plot here.

This module is the public face of all three; its names are unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sf_bench.estimate import BOOTSTRAP_RESAMPLES, Estimate, bootstrap_ci
from sf_bench.summary import DatasetSummary, RunReport, load_run, ordered_datasets, summarize
from sf_bench.tables import format_comparison, format_paired, format_table

if TYPE_CHECKING:
    from sf_bench.compare import PairedComparison

__all__ = [
    "BOOTSTRAP_RESAMPLES",
    "DatasetSummary",
    "Estimate",
    "RunReport",
    "bootstrap_ci",
    "format_comparison",
    "format_paired",
    "format_table",
    "load_run",
    "paired_comparisons",
    "plot",
    "summarize",
]


def paired_comparisons(reports: Sequence[RunReport], baseline: int = 0) -> list[PairedComparison]:
    """Paired comparisons of every other run against ``reports[baseline]``.

    One :class:`~sf_bench.compare.PairedComparison` per dataset both hold (usual dataset order, then
    run order).
    """
    from sf_bench.compare import compare

    base = reports[baseline]
    out: list[PairedComparison] = []
    for name in ordered_datasets(reports):
        if name not in base.summaries:
            continue
        for rep in reports:
            if rep is base or name not in rep.summaries:
                continue
            notes: list[str] = []
            splits = (base.options.get("split"), rep.options.get("split"))
            if splits[0] != splits[1]:
                notes.append(f"splits differ ({splits[0]} vs {splits[1]})")
            a, b = base.summaries[name], rep.summaries[name]
            if (a.k, a.repeats) != (b.k, b.repeats):
                notes.append(f"k x repeats differ ({a.k}x{a.repeats} vs {b.k}x{b.repeats})")
            out.append(
                compare(
                    name,
                    base.problems.get(name, {}),
                    rep.problems.get(name, {}),
                    labels=(base.label, rep.label),
                    metrics=(base.summaries[name].metric, rep.summaries[name].metric),
                    notes=notes,
                )
            )
    return out


def plot(reports: Sequence[RunReport], path: str | Path) -> Path:
    """Bar chart of each run's score per dataset with 95% CI whiskers, saved as PNG (matplotlib Agg).

    Raises:
        BenchError: the file cannot be written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sf_bench.errors import BenchError

    datasets = ordered_datasets(reports)
    width = 0.8 / max(1, len(reports))
    figure, axes = plt.subplots(figsize=(max(6.0, 1.4 * len(datasets) + 2), 4.0), dpi=120)
    fig: Any = figure  # Any: matplotlib's stubs leave the methods' **kwargs untyped
    ax: Any = axes
    for i, rep in enumerate(reports):
        xs: list[float] = []
        ys: list[float] = []
        lo: list[float] = []
        hi: list[float] = []
        for j, name in enumerate(datasets):
            s = rep.summaries.get(name)
            if s is None or math.isnan(s.score.value):
                continue
            xs.append(j - 0.4 + width * (i + 0.5))
            ys.append(s.score.value)
            lo.append(max(0.0, s.score.value - s.score.low))
            hi.append(max(0.0, s.score.high - s.score.value))
        ax.bar(xs, ys, width=width * 0.95, yerr=[lo, hi], capsize=3, label=rep.label)
    ax.set_xticks(range(len(datasets)))
    ax.set_xticklabels(datasets)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("score (solve rate; F1 for DROP/HotpotQA)")
    ax.set_title("sf-bench: score per dataset, 95% bootstrap CI")
    ax.grid(axis="y", alpha=0.3)
    if len(reports) > 1:
        ax.legend(fontsize="small")
    fig.tight_layout()
    path = Path(path)
    try:
        fig.savefig(path, format="png")
    except OSError as e:
        raise BenchError(f"cannot write plot {path}: {e.strerror or e}") from e
    finally:
        plt.close(fig)
    return path
