"""The flags of ``sf bench run`` turned into what the harness takes.

That is: checks of their combinations, the system and its LLM endpoints, scorer overrides
(``--metric``, ``--judge``, ``--extract``), and the run's closing lines (summary file, the
unscored-samples error).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sf_sandbox.settings import SandboxSettings

__all__ = [
    "build_system",
    "check_generator_flags",
    "check_llm_flags",
    "extract_scorers_for",
    "metric_scorers",
    "parse_metrics",
    "unscored_line",
    "write_summary",
]


def unscored_line(summaries: dict[str, Any]) -> str | None:
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


def parse_metrics(specs: tuple[str, ...], names: list[str]) -> dict[str, str]:
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


def metric_scorers(chosen: dict[str, str], scorers: dict[str, Any]) -> dict[str, Any]:
    """The scorer overrides with each ``--metric`` choice added (a dataset's default needs none).

    Raises:
        BenchConfigError: ``--metric`` names a dataset ``--judge`` already scores.
    """
    from sf_bench.errors import BenchConfigError
    from sf_bench.scorers import default_metric, text_datasets, text_scorer

    out = dict(scorers)
    for dataset, metric in chosen.items():
        if dataset in out:
            raise BenchConfigError(
                f"--metric {dataset}={metric} and --judge both choose how {dataset} is scored; pass one"
            )
        if dataset in text_datasets() and metric != default_metric(dataset):
            out[dataset] = text_scorer(dataset, metric)
    return out


def check_llm_flags(
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
        from sf_bench.systems.judge import judged_datasets

        judged = judged_datasets()
        if not any(name in judged for name in names):
            raise BenchConfigError(
                f"--judge applies to {', '.join(judged)} (ScoreFlow's test-time protocol); "
                f"none of {', '.join(names)} is judged: drop --judge"
            )


def check_generator_flags(generator: str | None, timeout: float | None, batch: int) -> None:
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


def extract_scorers_for(
    style: str,
    judge: bool,
    names: list[str],
    endpoints: Any,
    executor_model: str | None,
    base_url: str | None,
) -> tuple[Any, dict[str, Any]]:
    """``(endpoints, {dataset: LLMExtract})`` for ``--extract STYLE`` (see ``systems/extract.py``)."""
    from sf_bench.errors import BenchConfigError
    from sf_bench.systems.extract import extract_scorers, extracted_datasets

    if judge:
        raise BenchConfigError(
            "--extract and --judge are exclusive (--judge extracts before judging already)"
        )
    extracted = extracted_datasets()
    if not any(name in extracted for name in names):
        raise BenchConfigError(
            f"--extract applies to {', '.join(extracted)}; none of {', '.join(names)} is: drop --extract"
        )
    if endpoints is None:
        from sf_bench.systems.baselines import Endpoints

        endpoints = Endpoints(executor_model=executor_model, base_url=base_url)
    return endpoints, extract_scorers(names, endpoints.executor(), style=style)


def build_system(
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


def write_summary(path: Path, summaries: dict[str, Any]) -> None:
    from sf_bench.errors import BenchError

    try:
        path.write_text(
            json.dumps({n: s.to_json() for n, s in summaries.items()}, indent=2) + "\n", encoding="utf-8"
        )
    except OSError as e:
        raise BenchError(f"cannot write {path}: {e.strerror or e} (the per-record results are saved)") from e
