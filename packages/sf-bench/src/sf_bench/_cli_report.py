"""``sf bench report``: compare run folders (tables, paired statistics, a PNG plot)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from sf_bench._cli_common import CONTEXT, handle_bench_errors

__all__ = ["report_cmd"]


@click.command("report", context_settings=CONTEXT)
@click.argument("dirs", nargs=-1, required=True, type=click.Path(path_type=Path), metavar="DIR...")
@click.option(
    "--plot",
    "plot_path",
    type=click.Path(path_type=Path),
    default=None,
    help="PNG file for the plot [default: DIR/report.png of the first DIR].",
)
@click.option("--no-plot", is_flag=True, help="Tables only.")
@click.option(
    "--json",
    "json_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Also write the summaries as JSON to this file.",
)
@click.option(
    "--stats-json",
    "stats_path",
    default=None,
    metavar="PATH|-",
    help="Write the paired statistics as JSON to PATH (-: to stdout, instead of the tables).",
)
@click.option(
    "--baseline",
    "baseline",
    type=click.Path(path_type=Path),
    default=None,
    help="The DIR every other run is compared with [default: the first DIR].",
)
@handle_bench_errors
def report_cmd(
    dirs: tuple[Path, ...],
    plot_path: Path | None,
    no_plot: bool,
    json_path: Path | None,
    stats_path: str | None = None,
    baseline: Path | None = None,
) -> None:
    """Compare runs: one table per dataset, one row per run DIR, paired statistics, a PNG bar chart.

    \b
    Examples:
      sf bench report runs/bench/canonical-test
      sf bench report runs/io runs/cot runs/scoreflow --plot compare.png
      sf bench report runs/aflow runs/mine --no-plot --stats-json - | jq '.[] | .verdict'

    With two or more DIRs, a paired table compares every run with the first (or --baseline)
    on the problems both scored: per dataset the mean per-problem score difference (run minus
    baseline) with its 95% paired bootstrap interval (2,000 resamples, seed 0), wins/losses/ties,
    the exact sign test and the sign-flip permutation test p-values (two-sided), the per-problem
    cost difference in $, and "not significant" where the interval contains 0. Problems only one
    run scored are counted and left out; runs scored with different metrics are not compared.

    Columns: metric (official; numeric/equiv, the GSM8K/MATH defaults, with the official metric
    in a note below; llm-judge for runs made with --judge), score (solve rate;
    mean F1 for DROP/HotpotQA; judge accuracy with llm-judge) with its 95% percentile-bootstrap
    confidence interval over problems (2,000 resamples, seed 0), pass@1 and pass@k (unbiased
    estimator), EM and F1, errors, the workflow generator's and the executor's cost in $
    (gen $, exec $) and tokens (gen tok, exec tok), mean latency. A judge's own cost is printed
    below the tables.
    """  # noqa: D301 - click needs the \b escape (no-rewrap marker)
    from sf_bench.errors import BenchConfigError, BenchError
    from sf_bench.report import format_comparison, format_paired, load_run, paired_comparisons, plot

    labels = [str(d) for d in dirs]
    base = 0
    if baseline is not None:
        matches = [i for i, d in enumerate(dirs) if d == baseline or d.resolve() == baseline.resolve()]
        if not matches:
            raise BenchConfigError(f"--baseline {baseline} is not one of the DIRs: {', '.join(labels)}")
        base = matches[0]
    if stats_path is not None and len(dirs) < 2:
        raise BenchConfigError("--stats-json needs two or more DIRs to compare")
    reports = [load_run(d, label) for d, label in zip(dirs, labels, strict=True)]
    comparisons = paired_comparisons(reports, base) if len(reports) > 1 else []
    to_stdout = stats_path == "-"
    if not to_stdout:
        click.echo(format_comparison(reports))
        if comparisons:
            click.echo("\n" + format_paired(comparisons))
    if json_path is not None:
        data = {r.label: {n: s.to_json() for n, s in r.summaries.items()} for r in reports}
        try:
            json_path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        except OSError as e:
            raise BenchError(f"cannot write {json_path}: {e.strerror or e}") from e
    if stats_path is not None:
        text = json.dumps([c.to_json() for c in comparisons], indent=2) + "\n"
        if to_stdout:
            click.echo(text, nl=False)
        else:
            try:
                Path(stats_path).write_text(text, encoding="utf-8")
            except OSError as e:
                raise BenchError(f"cannot write {stats_path}: {e.strerror or e}") from e
    if not no_plot:
        target = plot(reports, plot_path or (dirs[0] / "report.png"))
        click.echo(f"\nplot: {target}", err=to_stdout)
