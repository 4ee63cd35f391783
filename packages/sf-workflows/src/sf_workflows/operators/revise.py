"""Revise: improve a solution given feedback (AFlow's operator)."""

from __future__ import annotations

from ._base import Operator, require_str
from ._context import current
from ._text import extract_code, extract_tag

PROMPT = """Improve the solution to the problem below using the feedback. Keep what is right, fix
what the feedback shows is wrong.

Problem:
{problem}

Solution:
{solution}

Feedback:
{feedback}

Reply in exactly this format:
<solution>the full improved solution</solution>"""


class Revise(Operator):
    """Rewrite a solution following a critique."""

    name = "Revise"
    attr = "revise"
    call_format = "revise(solution: str, feedback: str) -> str"
    usage = "Improves a solution according to feedback (for example a Custom critique)."
    example = "better = await self.revise(solution=solution, feedback=critique)"

    async def __call__(self, solution: str, feedback: str) -> str:
        """Return the improved solution; extracted code for code tasks.

        The old one when the reply has no ``<solution>``.

        Raises:
            TypeError: an argument is not a string.
        """
        require_str("revise", "solution", solution)
        require_str("revise", "feedback", feedback)
        reply = await self._ask(
            PROMPT.format(problem=self.problem_text, solution=solution, feedback=feedback)
        )
        improved = extract_tag(reply, "solution")
        if not improved:
            return solution
        if current().task_type == "code":
            return extract_code(improved, self.entry_point)
        return improved
