"""``sf bench run`` as named steps: its flags as one :class:`RunSettings`, then :func:`run`.

:func:`run` takes the steps in this order, each a function here: :func:`check_settings` (flag
combinations, before anything is loaded), loading the problems, :func:`build_scored_system`
(system, LLM endpoints, scorer overrides), :func:`sample_count`, :func:`check_system` (the
system's own checks of the run, as warnings or a ``--strict`` refusal), :func:`make_harness`
(with the ``--ray`` pool), :func:`run_harness` and :func:`report`. The helpers the steps share
with nothing else are in :mod:`sf_bench._cli_run_setup`.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import click

from sf_bench._cli_progress import Bar, generation_progress
from sf_bench._cli_run_setup import (
    build_system,
    check_generator_flags,
    check_llm_flags,
    extract_scorers_for,
    metric_scorers,
    parse_metrics,
    unscored_line,
    write_summary,
)

if TYPE_CHECKING:
    from sf_bench.harness import Harness
    from sf_bench.summary import DatasetSummary
    from sf_bench.systems.baselines import Endpoints
    from sf_bench.types import Problem
    from sf_sandbox.ray_pool import RayPool
    from sf_sandbox.settings import SandboxSettings

__all__ = [
    "RunSettings",
    "build_scored_system",
    "check_settings",
    "check_system",
    "make_harness",
    "report",
    "run",
    "run_harness",
    "sample_count",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class RunSettings:
    """The flags of one ``sf bench run``, one field per option (``sf bench run --help`` says each).

    Field names are the click parameter names, so ``RunSettings(**params)`` takes what click
    passes to the command. Nothing is checked on construction: :func:`check_settings` does that.
    """

    datasets: tuple[str, ...]
    """The DATASET... arguments as given (``("all",)`` for every registered one)."""
    solver: str | None = None
    generator: str | None = None
    generator_timeout: float | None = None
    generator_batch: int = 1
    generator_model: str | None = None
    executor_model: str | None = None
    base_url: str | None = None
    judge: bool = False
    judge_model: str | None = None
    extract: str | None = None
    split: str = "test"
    data_dir: Path | None = None
    limit: int | None = None
    k: int | None = None
    """Samples per problem; None: the system's own count (a file's samples), else 1."""
    repeats: int = 1
    concurrency: int = 4
    timeout: float | None = None
    test_timeout: float | None = None
    out: Path | None = None
    """The results folder; None: ``runs/bench/<system>-<split>``."""
    quiet: bool = False
    ray_address: str | None = None
    metrics: tuple[str, ...] = ()
    strict: bool = False
    sandbox: SandboxSettings | None = None
    """The sandbox option group's settings (``sf_sandbox.cli_options``)."""


def run(settings: RunSettings) -> None:
    """Do one ``sf bench run``: check, load, build, run, then print the summary tables.

    Raises:
        BenchConfigError: a flag, a combination of flags or the data is wrong (exit 2).
        BenchError: the run could not be completed or its summary not written.
        click.exceptions.Exit: code 3 when samples were left unscored by our failures.
    """
    from sf_bench.datasets import load

    names = check_settings(settings)
    chosen = parse_metrics(settings.metrics, names)
    splits = {name: load(name, settings.split, data_dir=settings.data_dir) for name in names}
    limit = settings.limit
    problems = {name: ps if limit is None else ps[:limit] for name, ps in splits.items()}
    endpoints, system, scorers = build_scored_system(settings, names, chosen)
    k = settings.k if settings.k is not None else sample_count(system, problems)
    check_system(system, settings, splits, problems, k)
    out_dir = settings.out if settings.out is not None else _default_out(system.name, settings.split)
    models = endpoints.models() if endpoints is not None else {}
    harness, ray_pool = make_harness(settings, system, problems, k, scorers, out_dir, models)
    summaries = asyncio.run(run_harness(harness, problems, endpoints, ray_pool))
    report(settings, system.name, k, out_dir, models, summaries, endpoints)


def check_settings(settings: RunSettings) -> list[str]:
    """The run's dataset names (duplicates dropped, ``all`` expanded), once the flags are checked.

    Raises:
        BenchConfigError: an unknown dataset, a negative ``--limit`` or ``--concurrency`` below 1,
            or inconsistent LLM or generator flags (one line naming them).
    """
    from sf_bench import registry
    from sf_bench.errors import BenchConfigError

    s = settings
    names = list(registry.names()) if s.datasets == ("all",) else list(dict.fromkeys(s.datasets))
    for name in names:
        registry.get(name, extra=" (or all)")  # an unknown name: one line listing the datasets
    if s.limit is not None and s.limit < 0:
        raise BenchConfigError(f"--limit must be >= 0, got {s.limit}")
    check_llm_flags(s.solver, s.generator, s.generator_model, s.judge, s.judge_model, names)
    check_generator_flags(s.generator, s.generator_timeout, s.generator_batch)
    if s.concurrency < 1:
        raise BenchConfigError(f"--concurrency must be >= 1, got {s.concurrency}")
    return names


def build_scored_system(
    settings: RunSettings, names: list[str], chosen: dict[str, str]
) -> tuple[Endpoints | None, Any, dict[str, Any]]:
    """``(endpoints, system, scorer overrides)``: the system, and the scoring that flags choose.

    The overrides are those of ``--metric``, ``--judge`` and ``--extract``.

    ``chosen`` is :func:`~sf_bench._cli_run_setup.parse_metrics`' ``{dataset: metric}``.

    Raises:
        BenchConfigError: as :func:`~sf_bench._cli_run_setup.build_system`, or ``--extract`` or
            ``--metric`` combined with what they cannot be.
    """
    s = settings
    endpoints, system, scorers = build_system(
        s.solver,
        s.generator,
        s.generator_model,
        s.executor_model,
        s.base_url,
        s.judge,
        s.judge_model,
        names,
        s.concurrency,
        generator_timeout=s.generator_timeout,
        generator_batch=s.generator_batch,
        sandbox=s.sandbox,
    )
    scorers = metric_scorers(chosen, scorers)
    if s.extract is not None:
        endpoints, extracted = extract_scorers_for(
            s.extract, s.judge, names, endpoints, s.executor_model, s.base_url
        )
        scorers.update(extracted)
    return endpoints, system, scorers


def sample_count(system: Any, problems: Mapping[str, Sequence[Problem]]) -> int:
    """``--k`` when not given: the fewest samples the system holds for a dataset (a file's), else 1."""
    samples = getattr(system, "samples", None)
    if not callable(samples):
        return 1
    count = cast("Callable[[Sequence[Problem]], int]", samples)
    return max(1, min(count(ps) for ps in problems.values() if ps) if any(problems.values()) else 1)


def check_system(
    system: Any,
    settings: RunSettings,
    splits: Mapping[str, Sequence[Problem]],
    problems: Mapping[str, Sequence[Problem]],
    k: int,
) -> None:
    """Let the system check the run before it starts; print its warnings (``--strict``: refuse).

    Also gives a user generator its progress line unless ``--quiet``. ``splits`` are the whole
    splits, ``problems`` what ``--limit`` kept of them.

    Raises:
        BenchConfigError: the system refused the run (a ``file:PATH`` short of problems, a bad
            AFlow graph...), or with ``--strict``, the first thing it would not score.
    """
    from sf_bench.errors import BenchConfigError

    generator: Any = getattr(system, "generator", None)
    if not settings.quiet and hasattr(generator, "progress"):  # your generator: a line while it writes
        generator.progress = generation_progress()
    unscored_lines: list[str] = []
    check = getattr(system, "check_workflows", None)
    if callable(check):  # file:PATH: short problems are an error now, unknown ids a warning
        unscored_lines += cast("Callable[..., list[str]]", check)(problems, k)
    audit = getattr(system, "audit", None)
    if callable(audit):  # file: say what of the answers file would not be scored
        ids = {n: [p.id for p in ps] for n, ps in splits.items()}
        unscored_lines += cast("Callable[..., list[str]]", audit)(ids, problems, k)
    if unscored_lines and settings.strict:
        raise BenchConfigError(unscored_lines[0] + " (refused: --strict)")
    for line in unscored_lines:
        click.echo(f"warning: {line}", err=True)


def make_harness(
    settings: RunSettings,
    system: Any,
    problems: Mapping[str, Sequence[Problem]],
    k: int,
    scorers: dict[str, Any],
    out_dir: Path,
    models: Mapping[str, str],
) -> tuple[Harness, RayPool | None]:
    """The harness of the run, and the ``--ray`` pool testing its code answers (None without).

    The pool is started only when a dataset of the run is code; it is closed again if the
    harness cannot be made.

    Raises:
        BenchConfigError: the harness rejects an option; ``--ray`` without Ray or its cluster.
    """
    from sf_bench.harness import Harness

    s = settings
    options = {
        "split": s.split,
        "data_dir": str(s.data_dir) if s.data_dir else None,
        "limit": s.limit,
        **models,
    }
    ray_pool = code_scorer = None
    if s.ray_address is not None and any(ps and ps[0].task_type == "code" for ps in problems.values()):
        from sf_bench.scaleout import ray_code_scorer  # --ray: code answers are tested on the cluster

        code_scorer, ray_pool = ray_code_scorer(
            s.ray_address, concurrency=s.concurrency, test_timeout=s.test_timeout, settings=s.sandbox
        )
    try:
        harness = Harness(
            system,
            code_scorer=code_scorer,
            k=k,
            repeats=s.repeats,
            concurrency=s.concurrency,
            timeout=s.timeout,
            test_timeout=s.test_timeout,
            out_dir=out_dir,
            progress=None if s.quiet else Bar(),
            options=options,
            scorers=scorers,
            sandbox=s.sandbox,
        )
    except BaseException:
        if ray_pool is not None:
            ray_pool.close()
        raise
    return harness, ray_pool


async def run_harness(
    harness: Harness,
    problems: Mapping[str, Sequence[Problem]],
    endpoints: Endpoints | None,
    ray_pool: RayPool | None,
) -> dict[str, DatasetSummary]:
    """Run the harness on ``problems``; then close the endpoints and the ``--ray`` pool, come what may.

    The harness closes the system (its sandbox and LLM clients); ``endpoints`` may hold more (a
    separate judge). After the pool is closed its report (what ran where, what was retried) goes
    to stderr.
    """
    try:
        return await harness.arun(problems)
    finally:
        if endpoints is not None:
            await endpoints.aclose()
        if ray_pool is not None:
            await asyncio.get_running_loop().run_in_executor(None, ray_pool.close)
            click.echo(ray_pool.report.format(), err=True)


def report(
    settings: RunSettings,
    system_name: str,
    k: int,
    out_dir: Path,
    models: Mapping[str, str],
    summaries: dict[str, DatasetSummary],
    endpoints: Endpoints | None,
) -> None:
    """Write ``summary.json``, print the tables and the endpoint's failures.

    Raises:
        BenchError: ``summary.json`` cannot be written.
        click.exceptions.Exit: code 3, after an ``error:`` line, when samples were left unscored.
    """
    from sf_bench.report import format_table

    write_summary(out_dir / "summary.json", summaries)
    used = "".join(f", {key.removesuffix('_model')} {value}" for key, value in models.items())
    click.echo(
        f"\n{system_name} on {settings.split}, {k} sample(s) x {settings.repeats} repeat(s){used}; "
        f"results in {out_dir}"
    )
    click.echo(format_table(summaries.values()))
    attempts, failed = endpoints.failures() if endpoints is not None else (0, 0)
    if attempts:
        click.echo(
            f"LLM endpoint: {attempts} HTTP attempt(s) failed (5xx, 429, dropped, timed out or malformed); "
            f"{failed} call(s) still failed after the retries"
        )
    line = unscored_line(summaries)
    if line:
        click.echo(line, err=True)
        raise click.exceptions.Exit(3)


def _default_out(system_name: str, split: str) -> Path:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", system_name).strip("-.")[:60] or "system"
    return Path("runs") / "bench" / f"{slug}-{split}"
