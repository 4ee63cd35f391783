"""Value types: :class:`Task` (a problem as workflows see it), :class:`Usage`, :class:`Outcome`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from sf_workflows.errors import WorkflowConfigError
from sf_workflows.status import OutcomeStatus

if TYPE_CHECKING:
    from sf_workflows.protocols import Completion, ProblemLike

TASK_TYPES = ("code", "math", "qa")


@dataclass(frozen=True, slots=True, kw_only=True)
class Task:
    """One problem for a workflow.

    sf-workflows does not depend on sf-bench: any object with ``id``, ``task_type``, ``prompt``
    and ``extras`` (sf-bench's ``Problem``) converts with :meth:`from_problem`, and every API
    that takes a task also takes such an object.
    """

    id: str
    task_type: str
    """``code``, ``math`` or ``qa``."""
    prompt: str
    """The full problem text (for QA it includes the context passages)."""
    entry_point: str | None = None
    """Code tasks: the function the answer must define."""
    public_tests: tuple[str, ...] = ()
    """Code tasks: public test statements the ``Test`` operator may run (never hidden tests)."""
    question: str | None = None
    """The problem without its context passages, shown to the workflow *generator* (ScoreFlow
    shows the question only for DROP/HotpotQA). ``None`` means the prompt."""
    dataset: str = ""

    def __post_init__(self) -> None:
        if self.task_type not in TASK_TYPES:
            raise WorkflowConfigError(
                f"task_type must be one of {', '.join(TASK_TYPES)}, got {self.task_type!r}"
            )
        if self.task_type == "code" and not self.entry_point:
            raise WorkflowConfigError(f"code task {self.id!r} needs an entry_point (the function name)")
        object.__setattr__(self, "public_tests", tuple(self.public_tests))

    @classmethod
    def from_problem(cls, problem: ProblemLike) -> Task:
        """Convert a duck-typed problem (``id``, ``task_type``, ``prompt``, ``extras``)."""
        if isinstance(problem, Task):
            return problem
        try:
            pid, task_type, prompt = problem.id, str(problem.task_type), problem.prompt
        except AttributeError as exc:
            raise WorkflowConfigError(
                f"a problem needs id, task_type and prompt attributes (got {type(problem).__name__})"
            ) from exc
        extras: Mapping[str, Any] = getattr(problem, "extras", None) or {}
        question = extras.get("question")
        context = extras.get("context")
        if (
            question is None
            and task_type == "qa"
            and isinstance(context, str)
            and context
            and context in prompt
        ):
            question = prompt.replace(context, "").strip()
        tests = extras.get("public_tests") or ()
        return cls(
            id=str(pid),
            task_type=task_type,
            prompt=str(prompt),
            entry_point=extras.get("entry_point"),
            public_tests=tuple(str(t) for t in tests),
            question=question if isinstance(question, str) else None,
            dataset=str(getattr(problem, "dataset", "") or ""),
        )

    def workflow_input(self) -> str | dict[str, Any]:
        """What ``Workflow(config, problem)`` receives, as in ScoreFlow.

        Returns:
            The prompt for math and QA; for code, a dict with ``task_id``, ``prompt`` and
            ``entry_point``.
        """
        if self.task_type == "code":
            return {"task_id": self.id, "prompt": self.prompt, "entry_point": self.entry_point}
        return self.prompt

    @property
    def generator_text(self) -> str:
        """The task text shown to the generator (the question without context for QA)."""
        return self.question if self.question is not None else self.prompt


def as_task(problem: ProblemLike) -> Task:
    """``problem`` as a :class:`Task` (see :meth:`Task.from_problem`)."""
    return Task.from_problem(problem)


@dataclass(frozen=True, slots=True, kw_only=True)
class Usage:
    """Token and cost totals. Add two with ``+``.

    ``cost`` is USD actually spent: calls answered from the cache add tokens to
    ``cached_prompt_tokens``/``cached_completion_tokens`` and nothing to ``cost``.
    """

    calls: int = 0
    """Requests answered (from the endpoint or the cache)."""
    cached_calls: int = 0
    prompt_tokens: int = 0
    """Prompt tokens of requests actually sent."""
    completion_tokens: int = 0
    cached_prompt_tokens: int = 0
    cached_completion_tokens: int = 0
    cost: float = 0.0
    """USD spent (price table rate; unpriced models count 0)."""
    saved_cost: float = 0.0
    """USD the cache saved (the original cost of replies served from it)."""

    def __add__(self, other: object) -> Usage:
        if not isinstance(other, Usage):
            return NotImplemented
        return Usage(**{k: getattr(self, k) + getattr(other, k) for k in _USAGE_FIELDS})

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON."""
        return asdict(self)

    @classmethod
    def of(cls, completion: Completion) -> Usage:
        """The usage of one :class:`~sf_workflows.protocols.Completion`."""
        pt, ct = (
            int(getattr(completion, "prompt_tokens", 0)),
            int(getattr(completion, "completion_tokens", 0)),
        )
        cost = float(getattr(completion, "cost", 0.0))
        if getattr(completion, "cached", False):
            return cls(
                calls=1, cached_calls=1, cached_prompt_tokens=pt, cached_completion_tokens=ct, saved_cost=cost
            )
        return cls(calls=1, prompt_tokens=pt, completion_tokens=ct, cost=cost)


_USAGE_FIELDS = tuple(Usage.__dataclass_fields__)


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """The result of running one workflow on one task."""

    status: OutcomeStatus
    answer: str | None = None
    """The returned string (``None`` unless ``ok``)."""
    error: str | None = None
    """Why it failed, in one line a person or a generator can act on."""
    usage: Usage = field(default_factory=Usage)
    """Executor tokens and cost of this run (counted on the host)."""
    duration: float = 0.0
    """Wall seconds of the run, as seen by the host."""
    stderr: str = ""
    """The tail of the workflow's stderr (for debugging)."""

    @property
    def ok(self) -> bool:
        """True when the workflow returned an answer."""
        return self.status is OutcomeStatus.OK

    @property
    def failure(self) -> str | None:
        """The failure label: ``workflow:<reason>`` or ``infra:<cause>``, None when ``ok``.

        See :func:`sf_workflows.failures.failure_label`.
        """
        from sf_workflows.failures import failure_label

        return failure_label(self.status)

    @property
    def infrastructure(self) -> bool:
        """True when the run failed for our reasons (endpoint, sandbox): not a score."""
        from sf_workflows.failures import FailureKind, failure_kind

        return failure_kind(self.status) is FailureKind.INFRA

    def to_json(self) -> dict[str, Any]:
        """Plain dict for JSON."""
        return {
            "status": str(self.status),
            "answer": self.answer,
            "error": self.error,
            "usage": self.usage.to_dict(),
            "duration": self.duration,
            "stderr": self.stderr,
        }
