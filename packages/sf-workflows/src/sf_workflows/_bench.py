"""The one place sf-workflows touches sf-bench: loading a problem (and scoring an answer) for
``sf workflows run --dataset D --problem ID``.

sf-bench depends on sf-workflows, not the reverse, so this module imports ``sf_bench`` lazily,
inside these functions only, and turns its absence into a clear message. Nothing else in
sf_workflows imports sf_bench (a test checks it).
"""

from __future__ import annotations

import importlib
from typing import Any

from sf_workflows.errors import MissingDependencyError, WorkflowConfigError

_INSTALL = (
    "`sf workflows run --dataset` reads datasets through sf-bench, which is not installed: "
    "pip install packages/sf-sandbox packages/sf-workflows packages/sf-bench (or `uv sync`)"
)


def _sf_bench(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] == "sf_bench":
            raise MissingDependencyError(_INSTALL) from exc
        raise


def load_problem(dataset: str, problem_id: str, split: str = "test", data_dir: str | None = None) -> Any:
    """The sf-bench ``Problem`` with id ``problem_id`` in ``dataset``'s ``split``.

    Raises:
        MissingDependencyError: sf-bench is not installed.
        WorkflowConfigError: unknown dataset/split, or no such problem (a few valid ids are listed).
    """
    datasets = _sf_bench("sf_bench.datasets")
    errors = _sf_bench("sf_bench.errors")
    try:
        problems = datasets.load(dataset, split, data_dir=data_dir)
    except errors.BenchError as exc:
        raise WorkflowConfigError(str(exc)) from exc
    for problem in problems:
        if problem.id == problem_id:
            return problem
    examples = ", ".join(p.id for p in problems[:3])
    raise WorkflowConfigError(f"no problem {problem_id!r} in {dataset} {split} (ids look like: {examples})")


def score_answer(dataset: str, problem: Any, answer: str) -> Any | None:
    """sf-bench's official score of ``answer`` for a text dataset (``None`` for code datasets,
    whose hidden tests are run by ``sf bench``)."""
    scorers = _sf_bench("sf_bench.scorers")
    if dataset not in scorers.TEXT_DATASETS:
        return None
    return scorers.text_scorer(dataset)(problem, answer)
