"""Official scorers, one module per metric.

Text scorers (pure, synchronous, thread-safe; each module exposes
``score(problem, answer) -> Score`` with ``value`` in [0, 1]):

============ ===================================================================
``gsm8k``    final-number match (``openai/grade-school-math``); value 0/1
``math``     last ``\\boxed{}``, Hendrycks ``is_equiv`` OR math-verify; value 0/1
``drop``     official DROP EM/F1 (allennlp ``drop_eval.py``); value = F1
``hotpotqa`` official HotpotQA answer EM/F1 (``hotpot_evaluate_v1.py``); value = F1
============ ===================================================================

Code scorers (HumanEval, MBPP): ``code`` (hidden tests in sf-sandbox) and ``passk`` (the unbiased
pass@k estimator); see those modules.

Importing this package is light: each scorer module loads on first use.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from sf_bench.errors import BenchConfigError
from sf_bench.types import Problem, Score

__all__ = ["TEXT_DATASETS", "text_scorer"]

# --- text scorers (bench-data) ----------------------------------------------------------------

TEXT_DATASETS: tuple[str, ...] = ("gsm8k", "math", "drop", "hotpotqa")
"""Datasets whose answers are scored as text by :func:`text_scorer`."""


def text_scorer(dataset: str) -> Callable[[Problem, str], Score]:
    """Return the ``score(problem, answer) -> Score`` function of a text dataset.

    Raises:
        BenchConfigError: ``dataset`` is not one of :data:`TEXT_DATASETS` (code datasets are
            scored by ``sf_bench.scorers.code``).
    """
    if dataset not in TEXT_DATASETS:
        raise BenchConfigError(
            f"no text scorer for {dataset!r}; text datasets: {', '.join(TEXT_DATASETS)} "
            "(humaneval and mbpp are scored by running their tests: sf_bench.scorers.code)"
        )
    module = importlib.import_module(f"sf_bench.scorers.{dataset}")
    return module.score  # type: ignore[no-any-return]


# --- code scorers (bench-harness): code.py, passk.py ------------------------------------------
