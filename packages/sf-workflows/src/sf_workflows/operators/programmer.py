"""Programmer: the LLM writes code that computes the answer; the code runs in the sandbox."""

from __future__ import annotations

from typing import Any

from ._base import Operator, require_str
from ._context import current
from ._text import extract_code

PROMPT = """Write Python code that computes the answer to the problem below.
Define a function `solve()` without parameters that returns the final answer. Use only the
standard library; do not read input or print the answer, return it.

Problem:
{problem}

Analysis:
{analysis}
{feedback}
Put the code in one ```python block."""

FEEDBACK = """
A previous attempt failed. Its code:
```python
{code}
```
Error: {error}
Write corrected code.
"""

OUTPUT = "After executing the following code:\n```python\n{code}\n```\nthe output of solve() is: {output}"
FAILED = "Executing code failed {attempts} times. Last code:\n```python\n{code}\n```\nLast error: {error}"


class Programmer(Operator):
    """Write a ``solve()`` function, run it (inside the sandbox), retry with the error on failure."""

    name = "Programmer"
    attr = "programmer"
    call_format = "programmer(analysis: str = 'None') -> str"
    usage = (
        "Automatically writes and executes Python code and returns the code with its output, "
        "based on the problem and an optional analysis."
    )
    example = "program_solution = await self.programmer(analysis=first_solution)"

    def __init__(self, llm: Any = None, *args: Any, max_attempts: int = 3, **kwargs: Any):
        super().__init__(llm, *args, **kwargs)
        self.max_attempts = max(1, int(max_attempts))

    async def __call__(self, analysis: str = "None") -> str:
        """Up to ``max_attempts`` (3) write-and-run rounds, each seeing the previous error.

        The code runs in a child process inside the sandbox with the run's code timeout; it
        never runs in the host's Python.

        Returns:
            The code and its output, or (after the last failed attempt) the code and the error.
            A failing program does not raise: the workflow decides what to do with the text.

        Raises:
            TypeError: ``analysis`` is not a string.
            RuntimeError: the run has no code runner.
        """
        require_str("programmer", "analysis", analysis)
        ctx = current()
        if ctx.run_code is None:
            raise RuntimeError(
                "programmer: this run has no sandboxed code runner, so code cannot be executed"
            )
        feedback, code, error = "", "", ""
        for _ in range(self.max_attempts):
            reply = await self._ask(
                PROMPT.format(problem=self.problem_text, analysis=analysis, feedback=feedback)
            )
            code = extract_code(reply, "solve")
            request = {"mode": "solve", "code": code, "test_timeout": ctx.code_timeout, "output_cap": 65536}
            result = await ctx.run_code(request, 2 * ctx.code_timeout + 2)
            if result.get("ok"):
                return OUTPUT.format(code=code, output=result.get("output", ""))
            error = str(result.get("error") or "unknown error")
            feedback = FEEDBACK.format(code=code, error=error)
        return FAILED.format(attempts=self.max_attempts, code=code, error=error)
