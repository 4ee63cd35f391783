"""What the validator allows, and its finding (:class:`Issue`).

A leaf module: :mod:`~sf_workflows.generator.validate` and the check modules beside it
(``_module_paths``, ``_workflow_class``) all read these tables, and :mod:`~.prompt` tells the
generator the same allowlist.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ALLOWED_IMPORTS",
    "ALLOWED_OPERATORS",
    "DEFAULT_OPERATORS",
    "FORBIDDEN_CALLS",
    "LEAK_NGRAM",
    "MAX_SOURCE_CHARS",
    "PROVIDED_NAMES",
    "Issue",
]

DEFAULT_OPERATORS: dict[str, tuple[str, ...]] = {
    "math": ("Custom", "Programmer", "ScEnsemble", "Review"),
    "qa": ("Custom", "AnswerGenerate", "ScEnsemble", "Review"),
    "code": ("CustomCodeGenerate", "ScEnsemble", "Test"),
}
"""Operators offered to the generator per task type (ScoreFlow's sets)."""

ALLOWED_OPERATORS: dict[str, tuple[str, ...]] = {
    "math": ("Custom", "AnswerGenerate", "Programmer", "ScEnsemble", "Review", "Revise", "Format"),
    "qa": ("Custom", "AnswerGenerate", "Programmer", "ScEnsemble", "Review", "Revise", "Format"),
    "code": ("Custom", "CustomCodeGenerate", "ScEnsemble", "Test", "Review", "Revise", "Format"),
}
"""Operators a workflow may use per task type when the caller names none (the offered ones
plus those the shipped reference workflows need)."""

ALLOWED_IMPORTS = frozenset(
    {
        "asyncio",
        "typing",
        "re",
        "math",
        "json",
        "random",
        "collections",
        "itertools",
        "functools",
        "string",
        "statistics",
        "fractions",
        "decimal",
        "dataclasses",
        "textwrap",
        "difflib",
        "heapq",
        "bisect",
        "copy",
    }
)
"""Modules (roots) a workflow may import, and the only modules an attribute path may reach."""
FORBIDDEN_CALLS = frozenset(
    {
        "exec",
        "eval",
        "compile",
        "open",
        "__import__",
        "globals",
        "locals",
        "vars",
        "input",
        "breakpoint",
        "exit",
        "quit",
        "help",
        "memoryview",
    }
)
"""Builtins a workflow may not call."""
PROVIDED_NAMES = frozenset({"operator", "create"})
"""Names every workflow is given (so it must not import them)."""
MAX_SOURCE_CHARS = 30_000
"""Longer sources are rejected unread."""
LEAK_NGRAM = 8
"""A string literal sharing this many consecutive words with the problem is a leak."""


@dataclass(frozen=True, slots=True)
class Issue:
    """One validation finding."""

    message: str
    line: int | None = None

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message
