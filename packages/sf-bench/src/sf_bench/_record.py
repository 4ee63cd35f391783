"""One result: a record per (problem, sample), a run per repeat, and how it ended.

A :class:`Record` per (problem, sample), a :class:`Run` per repeat, and how it ended
(:class:`RecordStatus`). Re-exported by :mod:`sf_bench.records`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, cast

__all__ = ["INFRA_STATUSES", "SANDBOX_REDO_CAP", "Record", "RecordStatus", "Run", "group_by_problem", "now"]


class RecordStatus(StrEnum):
    """How one run (and so its record) ended."""

    SCORED = "scored"
    """The system answered and the answer was scored (whether it passed or not)."""
    SOLVER_ERROR = "solver_error"
    """The system raised or returned something that is not an answer; the run scores 0."""
    SOLVER_TIMEOUT = "solver_timeout"
    """The system did not answer within ``--timeout``; the run scores 0."""
    SCORER_ERROR = "scorer_error"
    """Scoring itself failed (e.g. the sandbox engine died): not the system's fault, so the
    record is redone when the run is resumed."""
    INFRA_ERROR = "infra_error"
    """Our machinery failed while the system answered (its LLM endpoint: 5xx, 429 past retries,
    refused or reset connection, the HTTP call's own timeout, a malformed or empty reply; or its
    sandbox): not a score. Left out of scores and confidence intervals, counted apart and redone
    when the run is resumed (a sample whose sandbox failed :data:`SANDBOX_REDO_CAP` times is
    not redone again)."""


INFRA_STATUSES = frozenset({RecordStatus.INFRA_ERROR, RecordStatus.SCORER_ERROR})
"""Statuses that are our failures, never a score (see ``sf_workflows.failures``)."""

SANDBOX_REDO_CAP = 3
"""Attempts of one (problem, sample) whose every failure was the sandbox's, after which resume
stops redoing it: a job able to make its own sandbox fail would otherwise make a run loop."""

_STATUS_ORDER = (
    RecordStatus.SCORER_ERROR,
    RecordStatus.INFRA_ERROR,
    RecordStatus.SOLVER_TIMEOUT,
    RecordStatus.SOLVER_ERROR,
    RecordStatus.SCORED,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Run:
    """One execution of the system on one (problem, sample), and its score."""

    status: RecordStatus
    answer: str | None = None
    """The answer text (``None`` when the system failed to answer)."""
    score: float = 0.0
    """The scorer's value in [0, 1]; 0 for a failed run."""
    metrics: Mapping[str, float] = field(default_factory=dict[str, float])
    """Secondary metrics from the scorer (``em``, ``f1``, ...)."""
    failure: str | None = None
    """Why the run scored 0 or was not scored: the scorer's kind (``assertion``,
    ``exception:TypeError``, ``timeout``, ...); the system's own failure
    (``solver_error``/``solver_timeout``, or a workflow's ``workflow:<reason>``: ``invalid``,
    ``exception``, ``timeout``, ``bad_return``, ``call_limit``, ``no_workflow``...); or ours,
    ``infra:endpoint``/``infra:sandbox`` (status ``infra_error``, no score)."""
    detail: str | None = None
    """Scorer's explanation (extracted answer, failing assert...)."""
    error: str | None = None
    """What went wrong when the run did not get scored normally (``TypeError: ...``)."""
    cost: float = 0.0
    """US dollars."""
    input_tokens: int = 0
    output_tokens: int = 0
    latency: float = 0.0
    """Seconds the system took to answer."""
    metadata: Mapping[str, Any] = field(default_factory=dict[str, Any])
    """The system's answer metadata (workflow source, model, ``cost_split``/``token_split``
    between the workflow generator and the executor...)."""
    scoring_cost: float = 0.0
    """US dollars the scorer spent (an LLM judge); not part of :attr:`cost`, the system's."""
    scoring_tokens: int = 0
    """Tokens the scorer spent (an LLM judge)."""

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict (empty optional fields left out)."""
        out: dict[str, Any] = {"status": str(self.status), "answer": self.answer, "score": self.score}
        if self.metrics:
            out["metrics"] = dict(self.metrics)
        for key in ("failure", "detail", "error"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        out["cost"] = self.cost
        out["input_tokens"] = self.input_tokens
        out["output_tokens"] = self.output_tokens
        out["latency"] = round(self.latency, 6)
        if self.metadata:
            out["metadata"] = dict(self.metadata)
        if self.scoring_cost or self.scoring_tokens:
            out["scoring_cost"] = self.scoring_cost
            out["scoring_tokens"] = self.scoring_tokens
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Run:
        """Inverse of :meth:`to_json`.

        Raises:
            ValueError: a field is missing or has the wrong type.
        """
        return cls(
            status=RecordStatus(data["status"]),
            answer=_opt_str(data.get("answer")),
            score=_float(data.get("score", 0.0)),
            metrics={str(k): _float(v) for k, v in dict(data.get("metrics") or {}).items()},
            failure=_opt_str(data.get("failure")),
            detail=_opt_str(data.get("detail")),
            error=_opt_str(data.get("error")),
            cost=_float(data.get("cost", 0.0)),
            input_tokens=int(data.get("input_tokens", 0)),
            output_tokens=int(data.get("output_tokens", 0)),
            latency=_float(data.get("latency", 0.0)),
            metadata=dict(data.get("metadata") or {}),
            scoring_cost=_float(data.get("scoring_cost", 0.0)),
            scoring_tokens=int(data.get("scoring_tokens", 0)),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Record:
    """The result of one (problem, sample): its runs and their aggregate.

    ``score`` is the mean of the runs' scores (a failed run counts 0, as in ScoreFlow);
    ``metrics`` the per-key mean; ``cost``/tokens the sums; ``latency`` the mean.
    """

    dataset: str
    problem_id: str
    sample: int
    """Sample index in ``range(k)``."""
    runs: tuple[Run, ...]
    finished_at: float = 0.0
    """Unix time when the record was written."""
    attempt: int = 1
    """How many records of this (problem, sample) whose sandbox failed are in the file, this one
    included (1 for a first try; see :data:`SANDBOX_REDO_CAP`)."""
    final: bool = False
    """A failure of ours that resume does not redo any more: the sandbox failed on this sample
    at the cap-th attempt. Still not a score."""

    @property
    def infrastructure(self) -> bool:
        """True when a run failed for our reasons (:data:`INFRA_STATUSES`): not a score."""
        return self.status in INFRA_STATUSES

    @property
    def sandbox_failure(self) -> bool:
        """True when the record is ours and every infrastructure failure in it is the sandbox's."""
        bad = [r for r in self.runs if r.status in INFRA_STATUSES]
        return bool(bad) and all(r.failure in ("infra:sandbox", "sandbox_error") for r in bad)

    @property
    def status(self) -> RecordStatus:
        """The most serious status among the runs.

        The order is: scorer error > infra error > timeout > error > scored.
        """
        statuses = {r.status for r in self.runs}
        return next(s for s in _STATUS_ORDER if s in statuses) if statuses else RecordStatus.SCORER_ERROR

    @property
    def score(self) -> float:
        """Mean score over runs."""
        return sum(r.score for r in self.runs) / len(self.runs) if self.runs else 0.0

    @property
    def metrics(self) -> dict[str, float]:
        """Per-key mean of the runs' metrics (a run without the key counts 0)."""
        keys = sorted({k for r in self.runs for k in r.metrics})
        return {k: sum(r.metrics.get(k, 0.0) for r in self.runs) / len(self.runs) for k in keys}

    @property
    def passes(self) -> int:
        """Runs that scored 1 (solved)."""
        return sum(1 for r in self.runs if r.score >= 1.0)

    @property
    def answer(self) -> str | None:
        """The first run's answer."""
        return self.runs[0].answer if self.runs else None

    @property
    def failure(self) -> str | None:
        """The first run's failure kind, if any run failed."""
        return next((r.failure for r in self.runs if r.failure), None)

    @property
    def error(self) -> str | None:
        """The first error message among the runs."""
        return next((r.error for r in self.runs if r.error), None)

    @property
    def cost(self) -> float:
        """Total US dollars over runs."""
        return sum(r.cost for r in self.runs)

    @property
    def tokens(self) -> int:
        """Total tokens over runs."""
        return sum(r.input_tokens + r.output_tokens for r in self.runs)

    @property
    def latency(self) -> float:
        """Mean seconds to answer."""
        return sum(r.latency for r in self.runs) / len(self.runs) if self.runs else 0.0

    @property
    def key(self) -> tuple[str, int]:
        """``(problem_id, sample)``: what resume matches on."""
        return (self.problem_id, self.sample)

    def to_json(self) -> dict[str, Any]:
        """The JSON line: aggregates first (for ``jq``), then every run."""
        out: dict[str, Any] = {
            "dataset": self.dataset,
            "problem_id": self.problem_id,
            "sample": self.sample,
            "status": str(self.status),
            "score": self.score,
            "metrics": self.metrics,
            "answer": self.answer,
            "failure": self.failure,
            "error": self.error,
            "cost": self.cost,
            "tokens": self.tokens,
            "latency": round(self.latency, 6),
            "finished_at": round(self.finished_at, 3),
            "runs": [r.to_json() for r in self.runs],
        }
        if self.attempt > 1:
            out["attempt"] = self.attempt
        if self.final:
            out["final"] = True
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Record:
        """Inverse of :meth:`to_json` (aggregates are recomputed from ``runs``).

        Raises:
            ValueError: a field is missing or has the wrong type.
        """
        runs = data["runs"]
        if not isinstance(runs, list) or not runs:
            raise ValueError("'runs' must be a non-empty list")
        return cls(
            dataset=str(data["dataset"]),
            problem_id=str(data["problem_id"]),
            sample=int(data["sample"]),
            runs=tuple(Run.from_json(r) for r in cast("list[Any]", runs)),  # each checked by from_json
            finished_at=_float(data.get("finished_at", 0.0)),
            attempt=int(data.get("attempt", 1)),
            final=bool(data.get("final", False)),
        )


def _opt_str(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise ValueError(f"expected a string or null, got {type(value).__name__}")


def _float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"expected a number, got {value!r:.50}")
    out = float(value)
    if math.isnan(out):
        raise ValueError("NaN is not a valid value")
    return out


def now() -> float:
    """Unix time (a function so tests can see it is called once per record)."""
    return time.time()


def group_by_problem(records: Iterable[Record]) -> dict[str, list[Record]]:
    """Records grouped by problem id, samples sorted."""
    out: dict[str, list[Record]] = {}
    for r in records:
        out.setdefault(r.problem_id, []).append(r)
    for rs in out.values():
        rs.sort(key=lambda r: r.sample)
    return out
