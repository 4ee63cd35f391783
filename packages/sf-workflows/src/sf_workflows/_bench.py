"""Where ``sf workflows run --dataset D --problem ID`` gets its problem (and the answer's score).

sf-workflows sits below sf-bench and never imports it. A package that can supply problems registers
a mapping under the entry-point group ``sf.problem_sources`` with ``load_problem(dataset, id, split,
data_dir)``, ``score_answer(dataset, problem, answer)`` and ``error`` (the exception type its user
mistakes raise); sf-bench registers one (``sf_bench.problem_source``). This module finds it and turns
its absence into a clear message.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Protocol

from sf_workflows.errors import MissingDependencyError, WorkflowConfigError

if TYPE_CHECKING:
    from sf_workflows.protocols import ProblemLike

GROUP = "sf.problem_sources"

_INSTALL = (
    "`sf workflows run --dataset` reads datasets through sf-bench, which is not installed: "
    "pip install packages/sf-sandbox packages/sf-workflows packages/sf-bench (or `uv sync`)"
)


class AnswerScore(Protocol):
    """What ``score_answer`` returns (sf-bench's ``Score``): the value and why."""

    @property
    def value(self) -> float:
        """The score in [0, 1]."""
        ...

    @property
    def detail(self) -> str | None:
        """A short note on how it was scored, or None."""
        ...


def _source() -> Mapping[str, Any]:
    found = sorted(entry_points(group=GROUP), key=lambda ep: ep.name)
    if not found:
        raise MissingDependencyError(_INSTALL)
    try:
        return found[0].load()
    except ImportError as exc:  # registered, but its package cannot be imported here
        raise MissingDependencyError(f"{_INSTALL} ({exc})") from exc


def load_problem(
    dataset: str, problem_id: str, split: str = "test", data_dir: str | None = None
) -> ProblemLike:
    """The problem with id ``problem_id`` in ``dataset``'s ``split``, from the installed source.

    Raises:
        MissingDependencyError: no problem source (sf-bench) is installed.
        WorkflowConfigError: unknown dataset/split, or no such problem (a few valid ids are listed).
    """
    source = _source()
    try:
        return source["load_problem"](dataset, problem_id, split, data_dir)
    except source["error"] as exc:
        raise WorkflowConfigError(str(exc)) from exc


def score_answer(dataset: str, problem: ProblemLike, answer: str) -> AnswerScore | None:
    """The source's official score of ``answer`` (``None`` where it scores elsewhere, as for code)."""
    return _source()["score_answer"](dataset, problem, answer)
