"""Value types shared by datasets, scorers, systems and the harness."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class TaskType(StrEnum):
    """The kind of answer a problem expects."""

    CODE = "code"
    MATH = "math"
    QA = "qa"


@dataclass(frozen=True, slots=True, kw_only=True)
class Problem:
    """One benchmark problem, whatever the dataset.

    ``answers`` holds every gold answer the official metric accepts (one for GSM8K/MATH,
    several alternatives for DROP, one for HotpotQA; for code it is the canonical solution).
    ``extras`` carries dataset-specific fields under documented keys:

    - code: ``entry_point``, ``test`` (hidden test code), ``public_tests`` (list of assert
      strings, possibly empty), ``test_imports``; HumanEval ``canonical_solution``; MBPP
      ``test_list``, ``task_id``;
    - qa: ``context`` (passages), ``supporting_facts`` (HotpotQA), ``type``/``level``;
      ``question`` (DROP, HotpotQA); DROP ``passage``, ``ref_text``;
    - math: ``level``, ``subject``/``type``, ``solution``; MATH ``unique_id``; GSM8K ``cot``.

    Each dataset module (``sf_bench.datasets.<name>``) documents its exact keys; the MATH and
    GSM8K solution is ``reference``.
    """

    id: str
    """Stable identifier, unique within the dataset (``HumanEval/0``, ``gsm8k-17``, ...)."""
    dataset: str
    """Dataset name: humaneval, mbpp, gsm8k, math, drop or hotpotqa."""
    task_type: TaskType
    prompt: str
    """The text given to the system under test."""
    reference: str
    """The reference solution or answer as the dataset gives it (may include reasoning)."""
    answers: tuple[str, ...]
    """Every gold answer the metric accepts."""
    extras: Mapping[str, Any] = field(default_factory=dict[str, Any])


@dataclass(frozen=True, slots=True, kw_only=True)
class Score:
    """A scorer's verdict on one answer.

    ``value`` is in [0, 1] (1 = solved; F1 for DROP/HotpotQA). ``metrics`` holds secondary
    metrics (``em``, ``f1``...). ``failure`` is a short machine-readable failure kind for code
    (``assertion``, ``exception:TypeError``, ``timeout``, ``memory``, ``syntax``...), else None.
    ``cost``/``tokens`` are what scoring itself spent (only an LLM judge spends anything).
    """

    value: float
    metrics: Mapping[str, float] = field(default_factory=dict[str, float])
    failure: str | None = None
    detail: str | None = None
    """Human-readable explanation (extracted answer, error message...)."""
    cost: float = 0.0
    """US dollars spent *scoring* (an LLM judge); 0 for the official scorers. Kept apart from
    the system's own cost."""
    tokens: int = 0
    """Tokens spent scoring (an LLM judge's calls)."""
