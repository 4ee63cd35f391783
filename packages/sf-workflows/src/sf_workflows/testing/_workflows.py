"""Small workflows and operator runs for tests."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sf_workflows.operators import RunContext, activate, deactivate

__all__ = ["custom_workflow", "run_in_context"]

T = TypeVar("T")


def custom_workflow(body: str, init: str = "") -> str:
    """A workflow with a ``Custom`` operator (``self.custom``) and ``body`` as ``run_workflow``.

    ``init``: more lines for ``__init__`` (after the operator), unindented, one statement a line.
    ``body`` is unindented too; each of its lines is indented into the method.
    """
    return (
        "class Workflow:\n"
        "    def __init__(self, config, problem) -> None:\n"
        "        self.problem = problem\n"
        "        self.llm = create(config)\n"
        "        self.custom = operator.Custom(self.llm, self.problem)\n"
        + "".join(f"        {line}\n" for line in init.splitlines())
        + "\n    async def run_workflow(self):\n"
        + "".join(f"        {line}\n" for line in body.splitlines())
    )


def run_in_context(ctx: RunContext, factory: Callable[[], Awaitable[T]]) -> T:
    """Await ``factory()`` in a new event loop with ``ctx`` as the current run context."""

    async def go() -> T:
        token = activate(ctx)
        try:
            return await factory()
        finally:
            deactivate(token)

    return asyncio.run(go())
