"""Test: run a candidate against the task's *public* tests and repair it on failure."""

from __future__ import annotations

from typing import Any

from ._base import Operator, require_str
from ._context import RunContext, current
from ._harness import HarnessReply, HarnessRequest
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
SCOREFLOW_REGENERATE_INSTRUCTION = "Can you analyze this problem step by step and generate the code?"
"""The instruction ScoreFlow's Test regenerates with after its last failed round."""


def _describe(result: HarnessReply) -> tuple[int, str]:
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

    def __init__(self, llm: Any = None, *args: Any, test_loop: int | None = None, **kwargs: Any):
        super().__init__(llm, *args, **kwargs)
        self.test_loop = None if test_loop is None else max(1, int(test_loop))

    def _rounds(self, test_loop: Any) -> int:
        """The repair rounds of one call: the call's ``test_loop``, the constructor's, the style's.

        Raises:
            TypeError: ``test_loop`` is not an int.
        """
        if test_loop is not None:
            if isinstance(test_loop, bool) or not isinstance(test_loop, int):
                raise TypeError(f"test: argument 'test_loop' must be an int, got {type(test_loop).__name__}")
            return max(0, test_loop)
        return self.test_loop if self.test_loop is not None else self.style.test_loop

    async def _scoreflow(
        self, solution: str, rounds: int, tests: list[str], entry: str, timeout: float
    ) -> str:
        """ScoreFlow's Test, returning the passing (or regenerated) solution.

        ``rounds`` x (run the public tests; on failure ask for a reflection and a fix with
        ``REFLECTION_ON_PUBLIC_TEST_PROMPT``), run once more, and if it still fails regenerate
        from scratch with ``code_generate(instruction="Can you analyze this problem step by
        step and generate the code?")``. Differences: the tests run in a child process of the
        sandbox (ScoreFlow ``exec``s them in its own globals), and a failing test is described
        by its statement and error, without ScoreFlow's host traceback.
        """
        from .custom_code_generate import CustomCodeGenerate

        ctx = current()
        template = self.style.prompt("REFLECTION_ON_PUBLIC_TEST_PROMPT")

        async def run(code: str) -> HarnessReply:
            return await _run_tests(ctx, code, tests, entry, timeout)

        for _ in range(rounds):
            result = await run(solution)
            if result.get("ok"):
                return solution
            if result.get("error"):
                exec_pass = f"executed unsuccessfully, error: \n {result['error']}"
                test_fail = "executed unsucessfully"
            else:
                exec_pass = "executed successfully"
                test_fail = str(
                    [
                        {
                            "test_fail_case": {
                                "test_case": r["test"],
                                "error_type": "AssertionError",
                                "error_message": r.get("error") or "",
                            }
                        }
                        for r in result.get("results") or []
                        if not r.get("passed")
                    ]
                )
            prompt = template.format(
                problem=self.scoreflow_problem,
                solution=solution,
                exec_pass=exec_pass,
                test_fail=test_fail,
                entry_point=entry,
            )
            solution = extract_code(await self._ask(prompt), None)
        if (await run(solution)).get("ok"):
            return solution
        regenerate = CustomCodeGenerate(self.llm, problem=self.problem)
        return await regenerate(instruction=SCOREFLOW_REGENERATE_INSTRUCTION)

    async def __call__(self, solution: str, test_loop: int | None = None) -> str:
        """Run the public tests; on failure ask the LLM for a fix, up to ``test_loop`` times.

        ``test_loop`` (as in ScoreFlow's ``self.test(solution=..., test_loop=3)``) overrides the
        rounds for this call; by default the constructor's, else the style's (ours: 3; the
        ``scoreflow`` style: 10 on HumanEval, 6 on MBPP, then a fresh ``code_generate`` if the
        last version still fails, as ScoreFlow does).

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
        rounds = self._rounds(test_loop)
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
        if self.style.scoreflow:
            return await self._scoreflow(solution, rounds, tests, entry, timeout)
        for round_ in range(rounds + 1):
            result = await _run_tests(ctx, code, tests, entry, timeout)
            if result.get("ok"):
                return code
            passed, failures = _describe(result)
            if passed > best[0]:
                best = (passed, code)
            if round_ == rounds:
                break
            reply = await self._ask(
                PROMPT.format(entry_point=entry, problem=self.problem_text, solution=code, failures=failures)
            )
            code = extract_code(reply, entry)
        return best[1]


async def _run_tests(
    ctx: RunContext, code: str, tests: list[str], entry: str, timeout: float
) -> HarnessReply:
    """Run ``code`` against ``tests`` in the sandbox (each test within the run's code timeout).

    Raises:
        RuntimeError: the run has no code runner (callers check first, with their own message).
    """
    if ctx.run_code is None:
        raise RuntimeError("test: this run has no sandboxed code runner, so tests cannot be executed")
    request: HarnessRequest = {
        "mode": "tests",
        "code": code,
        "tests": tests,
        "entry_point": entry,
        "test_timeout": ctx.code_timeout,
    }
    return await ctx.run_code(request, timeout)
