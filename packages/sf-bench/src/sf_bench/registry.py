"""The dataset registry: one :class:`DatasetSpec` per dataset, and everything else reads it.

A dataset is one module in ``sf_bench/datasets/`` (not starting with ``_``) that loads its
problems and ends with ``DATASET = DatasetSpec(...)``: its name, loader, splits, task type
(code or text), how its answers are scored (the code scorer for code, else a scorer module's
named metrics), which metric is the default, and how ScoreFlow's LLM protocols treat it. The
registry finds those modules on first use, so the CLI's dataset choices and ``sf bench list``,
``datasets.load``, the scorer dispatch, the report's columns, the judge and extraction
overrides and sf-train's profile validation all follow from the entries; adding a dataset
touches one new module plus its data (README "Add a dataset").

:func:`register` adds an entry at run time (a plugin, or a test's throwaway dataset);
:func:`unregister` removes it again.

Order: the code datasets, then math, then question answering, by name within each (for the
six built-in ones: humaneval, mbpp, gsm8k, math, drop, hotpotqa).

The entry type, :class:`~sf_bench.types.DatasetSpec`, is a value type in :mod:`sf_bench.types`
(so a dataset module imports it without importing the registry that discovers it).
"""

from __future__ import annotations

import importlib
import pkgutil

from sf_bench.errors import BenchConfigError
from sf_bench.types import OFFICIAL, DatasetSpec, TaskType

__all__ = [
    "OFFICIAL",
    "DatasetSpec",
    "describe",
    "find",
    "full_id",
    "get",
    "names",
    "register",
    "short_id",
    "specs",
    "unregister",
    "with_flag",
]

_TASK_ORDER = tuple(TaskType)
_ENTRIES: dict[str, DatasetSpec] = {}
_discovered = False


def _discover() -> None:
    """Register the ``DATASET`` of every public module of ``sf_bench.datasets`` (once)."""
    global _discovered
    if _discovered:
        return
    package = importlib.import_module("sf_bench.datasets")
    for info in pkgutil.iter_modules(package.__path__):
        if info.name.startswith("_"):
            continue
        spec = getattr(importlib.import_module(f"{package.__name__}.{info.name}"), "DATASET", None)
        if isinstance(spec, DatasetSpec) and spec.name not in _ENTRIES:
            _ENTRIES[spec.name] = spec
    _discovered = True


def register(spec: DatasetSpec, *, replace: bool = False) -> DatasetSpec:
    """Add ``spec`` to the registry and return it.

    Raises:
        BenchConfigError: a dataset of that name is registered already (and not ``replace``).
    """
    _discover()
    if spec.name in _ENTRIES and not replace:
        raise BenchConfigError(f"dataset {spec.name!r} is registered already")
    _ENTRIES[spec.name] = spec
    return spec


def unregister(name: str) -> None:
    """Remove the dataset ``name`` (no error if it is not registered)."""
    _discover()
    _ENTRIES.pop(name, None)


def specs() -> tuple[DatasetSpec, ...]:
    """Every registered dataset: code, then math, then QA; by name within each."""
    _discover()
    return tuple(sorted(_ENTRIES.values(), key=lambda s: (_TASK_ORDER.index(s.task_type), s.name)))


def names() -> tuple[str, ...]:
    """The registered dataset names, in :func:`specs` order."""
    return tuple(s.name for s in specs())


def find(name: str) -> DatasetSpec | None:
    """The entry of ``name``, or None when no dataset has that name."""
    _discover()
    return _ENTRIES.get(name)


def get(name: str, *, extra: str = "") -> DatasetSpec:
    """The entry of ``name``.

    Raises:
        BenchConfigError: no dataset has that name (the message lists them, then ``extra``).
    """
    spec = find(name)
    if spec is None:
        raise BenchConfigError(f"unknown dataset {name!r}; choose from: {', '.join(names())}{extra}")
    return spec


def with_flag(flag: str) -> tuple[str, ...]:
    """The names of the datasets whose ``flag`` attribute is true (``judged``, ``is_code``...)."""
    return tuple(s.name for s in specs() if getattr(s, flag))


def describe(dataset: str, metric: str) -> str | None:
    """The one-line note of ``dataset``'s ``metric``, if its entry has one."""
    spec = find(dataset)
    return None if spec is None else spec.metric_notes.get(metric)


def short_id(dataset: str, problem_id: str) -> str | None:
    """``problem_id`` without its dataset's ``id_prefix``, or None.

    The result (``Mbpp/116`` → ``116``) is the form an answer or workflow file may use; None when the
    dataset has no prefix or the id lacks it.
    """
    spec = find(dataset)
    prefix = spec.id_prefix if spec is not None else ""
    return problem_id.removeprefix(prefix) if prefix and problem_id.startswith(prefix) else None


def full_id(dataset: str, short: str) -> str | None:
    """The id a file's short ``short`` id stands for (``116`` → ``Mbpp/116``); None without a prefix."""
    spec = find(dataset)
    return f"{spec.id_prefix}{short}" if spec is not None and spec.id_prefix else None
