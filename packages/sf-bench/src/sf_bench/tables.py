"""The text tables of ``sf bench run`` and ``sf bench report``.

One row per dataset (or per run), the notes under them, and the paired comparison.
Re-exported by :mod:`sf_bench.report`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from sf_bench import registry
from sf_bench.estimate import BOOTSTRAP_RESAMPLES
from sf_bench.scorers import OFFICIAL, metric_names
from sf_bench.summary import DatasetSummary, RunReport, ordered_datasets

__all__ = ["format_comparison", "format_paired", "format_table"]


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
    right = [i > 0 for i in range(len(header))]
    lines: list[str] = []
    for row in [header, *rows]:
        cells = [
            str(c).rjust(w) if r and i else str(c).ljust(w)
            for i, (c, w, r) in enumerate(zip(row, widths, right, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
        if row is header:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _row(s: DatasetSummary, first: str) -> list[str]:
    pass_k = max((kk for kk in s.pass_at if kk > 1), default=None)
    errors = s.solver_errors + s.solver_timeouts
    failed = ", ".join(f"{reason} {n}" for reason, n in s.workflow_failures.items()) or "-"
    problems = f"{s.problems}/{s.expected}" if s.expected else str(s.problems)
    return [
        first,
        problems,
        f"{s.k}x{s.repeats}",
        s.metric,
        s.score.fmt(),
        s.pass_at[1].fmt(ci=False) if 1 in s.pass_at else "-",
        f"{s.pass_at[pass_k].fmt()} @{pass_k}" if pass_k else "-",
        s.em.fmt(ci=False),
        s.f1.fmt(ci=False),
        str(errors),
        failed,
        str(s.infra_records),
        f"{s.generator_cost:.4f}",
        f"{s.executor_cost:.4f}",
        str(s.generator_tokens),
        str(s.executor_tokens),
        f"{s.latency:.2f}",
    ]


_HEADER = [
    "dataset",
    "problems",
    "k x rep",
    "metric",
    "score [95% CI]",
    "pass@1",
    "pass@k [95% CI]",
    "EM",
    "F1",
    "errors",
    "failures",
    "infra",
    "gen $",
    "exec $",
    "gen tok",
    "exec tok",
    "latency s",
]


def format_table(summaries: Iterable[DatasetSummary]) -> str:
    """One row per dataset: score with its CI, pass@k, EM/F1, errors, costs, tokens, latency.

    In full: metric, score with its bootstrap CI, pass@k, EM/F1, errors, the generator's and the
    executor's cost and tokens, latency; a line on scoring costs below.

    ``score`` is the solve rate (HumanEval, MBPP, GSM8K, MATH) or mean F1 (DROP, HotpotQA) with
    the ``official`` metric, judge accuracy with ``llm-judge``; ``errors`` counts runs where the
    system raised or timed out; ``failures`` the workflows' own failures by reason (each scores
    0); ``infra`` the samples our failures left unscored (endpoint, sandbox; not in the score).
    """
    summaries = list(summaries)
    rows = [_row(s, s.dataset) for s in summaries]
    return _table(_HEADER, rows) + _scoring_note(summaries) + _metrics_note(summaries)


def _metrics_note(summaries: Sequence[DatasetSummary], labels: Sequence[str] | None = None) -> str:
    """Lines naming each non-official metric in use and the other metrics computed beside it.

    For example ``gsm8k: metric numeric (value of the final number, not the official rule); official
    (grade-school-math's '#### ' string match) = 0.420 [0.310, 0.530]`` (after a blank line),
    or ``""`` when every dataset used ``official`` with nothing beside it. ``labels`` (one per
    summary, e.g. run folders) replace the dataset name at the start of each line.
    """
    lines: list[str] = []
    for i, s in enumerate(summaries):
        if s.metric == OFFICIAL and not s.other_metrics:
            continue
        what = registry.describe(s.dataset, s.metric)
        head = labels[i] if labels is not None else s.dataset
        line = f"{head}: metric {s.metric}" + (f" ({what})" if what else "")
        beside = [
            f"{name}"
            + (f" ({note})" if (note := registry.describe(s.dataset, name)) else "")
            + f" = {est.fmt()}"
            for name, est in s.other_metrics.items()
        ]
        lines.append(line + ("; " + "; ".join(beside) if beside else ""))
    return "\n\n" + "\n".join(lines) if lines else ""


def _scoring_note(summaries: Sequence[DatasetSummary], label: str = "") -> str:
    """A line on what llm-judge scoring cost, or ``""`` when no dataset used it.

    The line is ``llm-judge scoring (math, drop): $X, N tokens (not in gen $/exec $)`` (with a
    leading newline), given when some dataset was scored by a non-official metric.
    """
    judged = [s for s in summaries if s.metric not in metric_names(s.dataset)]
    if not judged:
        return ""
    cost = math.fsum(s.scoring_cost for s in judged)
    tokens = sum(s.scoring_tokens for s in judged)
    metrics = ", ".join(sorted({s.metric for s in judged}))
    where = f"{label}: " if label else ""
    return (
        f"\n{where}{metrics} scoring ({', '.join(s.dataset for s in judged)}): ${cost:.4f}, "
        f"{tokens} tokens (not in gen $/exec $)"
    )


def format_comparison(reports: Sequence[RunReport]) -> str:
    """A table per dataset with one row per run (for ``sf bench report DIR…``), with its split."""
    datasets = ordered_datasets(reports)
    header = ["run", "split", *_HEADER[1:]]
    blocks: list[str] = []
    for name in datasets:
        rows = [
            [rep.label, str(rep.options.get("split", "?")), *_row(rep.summaries[name], rep.label)[1:]]
            for rep in reports
            if name in rep.summaries
        ]
        runs = [rep for rep in reports if name in rep.summaries]
        beside = _metrics_note([rep.summaries[name] for rep in runs], [rep.label for rep in runs])
        blocks.append(f"{name}\n{_table(header, rows)}{beside}")
    notes = "".join(_scoring_note(list(rep.summaries.values()), rep.label) for rep in reports)
    return "\n\n".join(blocks) + (f"\n{notes}" if notes else "")


def format_paired(comparisons: Sequence[Any]) -> str:
    """The paired-statistics table of ``sf bench report A B…`` (empty string for none)."""
    from sf_bench.compare import PERMUTATIONS

    if not comparisons:
        return ""
    header = [
        "dataset",
        "run",
        "shared",
        "base",
        "run score",
        "diff [95% CI]",
        "W/L/T",
        "p sign",
        "p perm",
        "Δ $/problem",
        "verdict",
    ]

    def num(x: float, fmt: str = ".3f") -> str:
        return "-" if math.isnan(x) else format(x, fmt)

    rows: list[list[str]] = []
    for c in comparisons:
        shared = f"{c.shared}" + (
            f" (+{c.only_baseline}/+{c.only_run})" if c.only_baseline or c.only_run else ""
        )
        diff = "-" if math.isnan(c.difference) else f"{c.difference:+.3f} [{c.low:+.3f}, {c.high:+.3f}]"
        perm = num(c.p_permutation) + ("" if c.permutation_exact or math.isnan(c.p_permutation) else "~")
        verdict = str(c.verdict) + (f" ({'; '.join(c.notes)})" if c.notes else "")
        rows.append(
            [
                c.dataset,
                c.run,
                shared,
                num(c.baseline_score),
                num(c.run_score),
                diff,
                f"{c.wins}/{c.losses}/{c.ties}",
                num(c.p_sign),
                perm,
                num(c.cost_difference, "+.4f"),
                verdict,
            ]
        )
    return (
        f"paired: each run minus {comparisons[0].baseline}, over the problems both scored\n"
        f"(diff: mean per-problem score difference with its 95% paired bootstrap CI, "
        f"{BOOTSTRAP_RESAMPLES} resamples, seed 0; W/L/T: problems better/worse/equal;\n"
        f" p sign: exact sign test; p perm: sign-flip permutation test, ~ = {PERMUTATIONS} random "
        "flips; (+a/+b): problems only one run scored, left out)\n" + _table(header, rows)
    )
