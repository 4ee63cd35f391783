"""The per-run context operators read (stdlib only: this package also runs inside the sandbox).

A workflow run sets one :class:`RunContext` (a :mod:`contextvars` value, so concurrent runs in
one process each see their own). Operators take the LLM and the problem from their constructor
arguments, as in ScoreFlow, and everything else from here: the public tests (``Test``), the code
runner (``Programmer``, ``Test``) and the task type.
"""

from __future__ import annotations

import contextvars
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from ._harness import HarnessReply, HarnessRequest
from ._style import OURS, OperatorStyle

CodeRunner = Callable[[HarnessRequest, float], Awaitable[HarnessReply]]
"""``await run_code(request, timeout)`` runs the code harness (see ``_harness.py``) on ``request``
and returns its JSON reply. Inside the sandbox it starts a child process; on the host it sends a
sandbox job. It never raises for a failure of the candidate code (that is in the reply)."""


@dataclass
class RunContext:
    """Everything a workflow run shares with its operators."""

    llm: Any = None
    """Object with ``async complete(messages, **params)`` returning something with ``.text``."""
    problem: Any = None
    """What the workflow's constructor receives: the prompt (math, QA) or a dict (code)."""
    task_type: str = ""
    """``code``, ``math`` or ``qa``."""
    entry_point: str | None = None
    """Name of the function a code task asks for."""
    public_tests: tuple[str, ...] = ()
    """Public test statements (``assert f(1) == 2``); never the hidden tests that score."""
    run_code: CodeRunner | None = None
    """How Programmer and Test execute code; ``None`` means they cannot (they then say so)."""
    code_timeout: float = 10.0
    """Seconds one code execution may take (Programmer attempt, one Test round)."""
    style: OperatorStyle = OURS
    """Which prompts and behaviour the operators use (``ours`` or ``scoreflow``)."""


_CURRENT: contextvars.ContextVar[RunContext | None] = contextvars.ContextVar("sf_workflows_run", default=None)


def current() -> RunContext:
    """The context of the running workflow (an empty one outside any run)."""
    ctx = _CURRENT.get()
    return ctx if ctx is not None else RunContext()


def activate(ctx: RunContext) -> contextvars.Token[RunContext | None]:
    """Make ``ctx`` current for this task and the tasks it starts; returns the reset token."""
    return _CURRENT.set(ctx)


def deactivate(token: contextvars.Token[RunContext | None]) -> None:
    """Undo :func:`activate`."""
    _CURRENT.reset(token)
