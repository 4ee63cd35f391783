r"""The ``canonical`` system: answers every problem with the dataset's own reference.

It needs no model and no API key, and every answer should score 1, so a run proves the whole
path end to end: loading, the harness, the sandbox, the scorers, the records and the report.
A reference that does not score 1 is a finding about the dataset or the scorer (for example
MBPP task 630 in AFlow's files, whose reference AFlow broke).

Answers: ``problem.reference`` as the loader gives it: the complete program for HumanEval
(prompt + canonical solution) and MBPP, the worked solution for GSM8K (ending in ``#### n``)
and MATH (with its ``\boxed{}``), so the answer-extraction step is exercised too, and the gold
answer for DROP and HotpotQA.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sf_bench.types import Problem

__all__ = ["CanonicalSystem"]


class CanonicalSystem:
    """Reference answers; see the module docstring."""

    name = "canonical"

    async def prepare(self, problems: Sequence[Problem], k: int, state_dir: Path | None) -> None:
        """Nothing to prepare."""

    async def answer(self, problem: Problem, sample: int) -> str:
        """Return ``problem.reference`` (the same for every sample)."""
        return problem.reference
