"""The datasets, loaded from local files into :class:`~sf_bench.types.Problem`.

Six are built in, one module each, found by :mod:`sf_bench.registry` (their ``DATASET`` entries).

Nothing downloads. ``validate`` and ``test`` are AFlow's split files (the ones ScoreFlow reports
on), bundled in ``sf_bench/data/aflow/`` byte for byte; ``full`` (and ``math500``, ``full-974``)
read the official files from a folder the user names (``data_dir``, else ``$SF_BENCH_DATA_DIR``).

Split sizes: HumanEval 33/131/164, MBPP 86/341/427 (+ ``full-974``: 974), GSM8K 264/1,055/1,319,
MATH 119/486/5,000 (+ ``math500``: 500), DROP 200/800/9,536, HotpotQA 200/800/7,405
(validate/test/full).

Problem ids (stable, unique within a dataset and across its splits):

========== ====================================================================
humaneval  ``HumanEval/<n>`` (the official task_id)
mbpp       ``Mbpp/<task_id>``
gsm8k      ``gsm8k-test-<n>``, n = 0-based line in the official test.jsonl
math       official ``unique_id`` (``test/<subject>/<n>.json``), else ``math-<sha256[:12]>``
drop       ``<n>``, n = 0-based line in simple-evals' drop_v0_dev.jsonl.gz
hotpotqa   the record's ``_id``
========== ====================================================================

Each dataset module's docstring documents its fields, extras and kept AFlow quirks; its
``DATASET`` entry is what the registry reads.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sf_bench import registry
from sf_bench.datasets._io import DATA_DIR_ENV
from sf_bench.errors import BenchConfigError, DataError
from sf_bench.types import Problem

__all__ = [
    "DATASETS",
    "DATA_DIR_ENV",
    "load",
    "splits",
]

if TYPE_CHECKING:  # read by __getattr__ at each access; declared for the type checker
    DATASETS: tuple[str, ...]


def __getattr__(name: str) -> Any:
    """``DATASETS``: the registered dataset names (:func:`sf_bench.registry.names`), read now."""
    if name == "DATASETS":
        return registry.names()
    raise AttributeError(f"module 'sf_bench.datasets' has no attribute {name!r}")


def splits(name: str) -> tuple[str, ...]:
    """Return the split names ``name`` supports (``validate``, ``test``, ``full``, ...).

    Raises:
        BenchConfigError: Unknown dataset.
    """
    return tuple(registry.get(name).splits)


def load(
    name: str,
    split: str = "test",
    *,
    data_dir: str | Path | None = None,
    limit: int | None = None,
) -> list[Problem]:
    """Load the problems of one split, in file order.

    Args:
        name: A registered dataset (:data:`DATASETS`, :mod:`sf_bench.registry`).
        split: ``validate`` or ``test`` (AFlow's files), ``full`` (official set), or a
            dataset-specific split (``math500`` for MATH, ``full-974`` for MBPP); see
            :func:`splits`.
        data_dir: For ``validate``/``test``: a folder holding AFlow-format
            ``<name>_<split>.jsonl`` files (directly or under ``aflow_splits/``); None uses the
            bundled copies. For official splits: a folder holding the official files in their
            original format (directly or under ``<name>/``); None falls back to
            ``$SF_BENCH_DATA_DIR``.
        limit: Keep only the first ``limit`` problems (None keeps all).

    Returns:
        The problems; ids are unique.

    Raises:
        BenchConfigError: Unknown dataset or split, bad ``limit``, or an official split with no
            data folder.
        DataError: A data file is missing or malformed (the message names file and line), or
            two problems share an id.
    """
    spec = registry.get(name)
    if split not in spec.splits:
        raise BenchConfigError(f"unknown split {split!r} for {name}; choose from: {', '.join(spec.splits)}")
    if limit is not None and not _is_count(limit):
        raise BenchConfigError(f"limit must be a non-negative integer, got {limit!r}")
    problems: list[Problem] = spec.load(split, data_dir)
    seen: set[str] = set()
    for problem in problems:
        if problem.id in seen:
            raise DataError(f"{name} split {split!r}: problem id {problem.id!r} occurs twice")
        seen.add(problem.id)
    return problems if limit is None else problems[:limit]


def _is_count(value: object) -> bool:
    """Whether ``value`` is a non-negative ``int`` (a ``bool`` is not), whatever its annotation said."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
