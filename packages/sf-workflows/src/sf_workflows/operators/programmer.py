"""Programmer: the LLM writes code that computes the answer; the code runs in the sandbox."""

from __future__ import annotations

from typing import Any

from ._base import Operator, format_arg
from ._context import CodeRunner, current
from ._harness import HarnessRequest
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
SCOREFLOW_OUTPUT = (
    "After executing the following code written by llm agent.\n{code}\nWe have the following output: {output}"
)
"""ScoreFlow's Programmer result text (``scripts/MATH/operator.py``)."""
SCOREFLOW_FEEDBACK = (
    "\nThe result of the error from the code you wrote in the previous round:\n"
    "Code: {code}\n\nStatus: {status}, {output}"
)
"""ScoreFlow's feedback after a failed attempt."""
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

    async def __call__(self, analysis: Any = "None") -> str:
        """Up to ``max_attempts`` (3) write-and-run rounds, each seeing the previous error.

        ``analysis`` may be any value: a non-string (a list of earlier outputs, say) is shown
        as ScoreFlow's ``str.format`` shows it (``str(value)``).

        The code runs in a child process inside the sandbox with the run's code timeout; it
        never runs in the host's Python.

        Returns:
            The code and its output, or (after the last failed attempt) the code and the error.
            A failing program does not raise: the workflow decides what to do with the text.

        Raises:
            RuntimeError: the run has no code runner.
        """
        analysis = format_arg(analysis)
        ctx = current()
        run_code = ctx.run_code
        if run_code is None:
            raise RuntimeError(
                "programmer: this run has no sandboxed code runner, so code cannot be executed"
            )
        if self.style.scoreflow:
            return await self._scoreflow(analysis, run_code)
        feedback, code, error = "", "", ""
        for _ in range(self.max_attempts):
            reply = await self._ask(
                PROMPT.format(problem=self.problem_text, analysis=analysis, feedback=feedback)
            )
            code = extract_code(reply, "solve")
            request: HarnessRequest = {
                "mode": "solve",
                "code": code,
                "test_timeout": ctx.code_timeout,
                "output_cap": 65536,
            }
            result = await run_code(request, 2 * ctx.code_timeout + 2)
            if result.get("ok"):
                return OUTPUT.format(code=code, output=result.get("output", ""))
            error = str(result.get("error") or "unknown error")
            feedback = FEEDBACK.format(code=code, error=error)
        return FAILED.format(attempts=self.max_attempts, code=code, error=error)

    async def _scoreflow(self, analysis: str, run_code: CodeRunner) -> str:
        """ScoreFlow's Programmer, returning its code-and-output text (or "No code generated").

        Its prompt and texts, 3 attempts of at most ``style.programmer_timeout`` (30 s) each,
        run with ``run_code`` (the run's). Differences: the code runs in a child process of the
        sandbox (not ``exec`` on the host), and an error reads ``Execution error: <the
        exception>`` without ScoreFlow's host traceback; tenacity's 3 retries of the whole call
        on an exception are not repeated (a failing LLM call is the endpoint's failure here).
        """
        ctx = current()
        style = self.style
        timeout = style.programmer_timeout or ctx.code_timeout
        template = style.prompt("PYTHON_CODE_VERIFIER_PROMPT")
        feedback, code, output = "", "", ""
        for _ in range(max(1, style.programmer_attempts)):
            reply = await self._ask(
                template.format(problem=self.problem_text, analysis=analysis, feedback=feedback)
            )
            code = extract_code(reply, "solve") if reply.strip() else ""
            if not code:
                return "No code generated"
            request: HarnessRequest = {
                "mode": "solve",
                "code": code,
                "test_timeout": timeout,
                "output_cap": 65536,
            }
            result = await run_code(request, 2 * timeout + 2)
            if result.get("ok"):
                output = str(result.get("output", ""))
                return SCOREFLOW_OUTPUT.format(code=code, output=output)
            error = str(result.get("error") or "unknown error")
            status, output = (
                "Error",
                ("Code execution timed out" if error.startswith("timeout") else f"Execution error: {error}"),
            )
            feedback = SCOREFLOW_FEEDBACK.format(code=code, status=status, output=output)
        return SCOREFLOW_OUTPUT.format(code=code, output=output)
