"""sf-bench: six benchmarks with their official scores, and a harness for any solver or generator.

The benchmarks are HumanEval, MBPP, GSM8K, MATH, DROP and HotpotQA, each with its official
score; the harness scores any solver or workflow generator.

    import asyncio
    from sf_bench import evaluate

    async def solve(problem):            # any async def (or plain function) problem -> str
        return "42"

    summaries = asyncio.run(evaluate(solve, ["gsm8k"], split="validate", limit=5))

Importing this package is light: datasets, scorers, the sandbox and plotting load on use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sf_bench.errors import BenchConfigError, BenchError, DataError
from sf_bench.protocols import (
    Answer,
    BatchScorer,
    GeneratorSystem,
    Scorer,
    Solver,
    SolverSystem,
    System,
    WorkflowGenerator,
    WorkflowRunner,
    as_answer,
    as_system,
)
from sf_bench.types import Problem, Score, TaskType

if TYPE_CHECKING:
    from sf_bench.harness import Harness, evaluate
    from sf_bench.records import Record, RecordStatus, Run
    from sf_bench.report import DatasetSummary

__all__ = [
    "Answer",
    "BatchScorer",
    "BenchConfigError",
    "BenchError",
    "DataError",
    "DatasetSummary",
    "GeneratorSystem",
    "Harness",
    "Problem",
    "Record",
    "RecordStatus",
    "Run",
    "Score",
    "Scorer",
    "Solver",
    "SolverSystem",
    "System",
    "TaskType",
    "WorkflowGenerator",
    "WorkflowRunner",
    "as_answer",
    "as_system",
    "evaluate",
]

_LAZY = {
    "Harness": "sf_bench.harness",
    "evaluate": "sf_bench.harness",
    "Record": "sf_bench.records",
    "RecordStatus": "sf_bench.records",
    "Run": "sf_bench.records",
    "DatasetSummary": "sf_bench.report",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'sf_bench' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
