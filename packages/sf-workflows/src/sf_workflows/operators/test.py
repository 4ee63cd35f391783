"""Test: run a candidate against the task's *public* tests and repair it on failure."""

from __future__ import annotations

from typing import Any

from ._base import Operator, require_str
from ._context import current
from ._text import extract_code

PROMPT = """The solution below fails some tests of the task. Reflect on why, then write a fixed
solution that defines `{entry_point}`.

Task:
{problem}

Solution:
```python
{solution}
```

Failures:
{failures}

Reply with your reflection, then the complete fixed code in one ```python block."""

MAX_FAILURES_SHOWN = 3


def _describe(result: dict) -> tuple[int, str]:
    """Number of passed tests and a short failure text from a harness reply."""
    if result.get("error"):
        return 0, f"The code does not run: {result['error']}"
    rows = result.get("results") or []
    failed = [r for r in rows if not r.get("passed")]
    lines = [f"- `{r['test']}` -> {r.get('error') or 'failed'}" for r in failed[:MAX_FAILURES_SHOWN]]
    if len(failed) > MAX_FAILURES_SHOWN:
        lines.append(f"- … and {len(failed) - MAX_FAILURES_SHOWN} more failing tests")
    return len(rows) - len(failed), "\n".join(lines)


class Test(Operator):
    """Check code against the public tests (never the hidden ones) and fix it when it fails."""

    name = "Test"
    attr = "test"
    call_format = "test(solution: str) -> str"
    usage = (
        "Tests the solution with the task's public test cases; if it fails, reflects on the "
        "errors and repairs it. Returns the (possibly fixed) solution."
    )
    example = "solution = await self.test(solution=solution)"

    def __init__(self, llm: Any = None, *args: Any, test_loop: int = 3, **kwargs: Any):
        super().__init__(llm, *args, **kwargs)
        self.test_loop = max(1, int(test_loop))

    async def __call__(self, solution: str) -> str:
        """Run the public tests; on failure ask the LLM for a fix, up to ``test_loop`` (3) times.

        Only the public tests of the problem (``*_public_test.jsonl``) are used; the hidden
        tests that score the answer are never visible to the workflow (AFlow issue #41). With
        no public tests the solution is returned unchanged and no call is made. Execution is in
        a child process inside the sandbox.

        Returns:
            The first version that passes every public test, else the version that passed most.

        Raises:
            TypeError: ``solution`` is not a string.
            RuntimeError: the run has no code runner.
        """
        require_str("test", "solution", solution)
        ctx = current()
        tests = list(ctx.public_tests)
        if not tests:
            return solution
        if ctx.run_code is None:
            raise RuntimeError("test: this run has no sandboxed code runner, so tests cannot be executed")
        entry = self.entry_point or "solution"
        timeout = ctx.code_timeout * (len(tests) + 2) + 2
        best: tuple[int, str] = (-1, solution)
        code = solution
        for round_ in range(self.test_loop + 1):
            request = {
                "mode": "tests",
                "code": code,
                "tests": tests,
                "entry_point": entry,
                "test_timeout": ctx.code_timeout,
            }
            result = await ctx.run_code(request, timeout)
            if result.get("ok"):
                return code
            passed, failures = _describe(result)
            if passed > best[0]:
                best = (passed, code)
            if round_ == self.test_loop:
                break
            reply = await self._ask(
                PROMPT.format(entry_point=entry, problem=self.problem_text, solution=code, failures=failures)
            )
            code = extract_code(reply, entry)
        return best[1]
