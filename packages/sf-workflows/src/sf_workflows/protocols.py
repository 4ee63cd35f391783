"""The interfaces sf-workflows calls.

:class:`LLM` (what operators call) with the value it returns, :class:`Completion`; and
:class:`ProblemLike`, what a workflow run takes as its problem.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

Message = Mapping[str, str]
"""An OpenAI chat message: ``{"role": "user", "content": "..."}``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Completion:
    """One LLM reply with its accounting."""

    text: str
    """The reply's content."""
    model: str = ""
    """The model that answered (as the endpoint reports it)."""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    """USD for this call at the price table's rate (0 for unpriced models); a cached reply
    reports the cost it had when it was first fetched, and ``cached`` is set."""
    cached: bool = False
    """True when the reply came from the on-disk cache (no request was sent)."""


@runtime_checkable
class LLM(Protocol):
    """Anything operators can call.

    The OpenAI-compatible :class:`~sf_workflows.Executor`, :class:`~sf_workflows.testing.ScriptedLLM`,
    or your own object.

    ``params`` are OpenAI chat-completion parameters (``temperature``, ``max_tokens``, ``top_p``,
    ``stop``, ``seed``); an implementation ignores those it does not support. ``cache_tag`` (a
    str) may also be passed: it distinguishes otherwise identical requests in a cache and is not
    sent to the model.
    """

    async def complete(self, messages: Sequence[Message], **params: Any) -> Completion:  # pragma: no cover
        """Return the model's reply to ``messages``."""
        ...


class ProblemLike(Protocol):
    """A problem a workflow runs on: a :class:`~sf_workflows.Task`, sf-bench's ``Problem``, or yours.

    :meth:`~sf_workflows.Task.from_problem` converts it. Beyond these attributes it reads, when
    present, ``extras`` (a mapping: ``entry_point``, ``public_tests``, ``question``, ``context``)
    and ``dataset``.
    """

    @property
    def id(self) -> str:
        """The problem's identifier (made a ``str``)."""
        ...

    @property
    def task_type(self) -> str:
        """``code``, ``math`` or ``qa`` (a ``str`` or a ``StrEnum``)."""
        ...

    @property
    def prompt(self) -> str:
        """The full problem text."""
        ...
