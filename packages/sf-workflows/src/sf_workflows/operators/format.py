"""Format: reduce a solution to the final answer in the form the task needs."""

from __future__ import annotations

from ._base import Operator, require_str
from ._context import current
from ._text import extract_code, extract_tag

PROMPTS = {
    "math": "Give only the final answer of the solution below, in LaTeX inside \\boxed{{}}.",
    "qa": (
        "Give only the final answer of the solution below: the shortest span "
        "(a number, a name, a short phrase, or yes/no)."
    ),
    "": "Give only the final answer of the solution below, as briefly as possible.",
}

PROMPT = """{request}

Problem:
{problem}

Solution:
{solution}

Reply in exactly this format:
<answer>the final answer</answer>"""


class Format(Operator):
    r"""Turn a solution into a bare final answer (math: ``\boxed{}``; QA: shortest span).

    For code tasks it makes no LLM call: it returns the solution's code, extracted.
    """

    name = "Format"
    attr = "format"
    call_format = "format(solution: str) -> str"
    usage = "Reduces a solution to its final answer in the form the task expects."
    example = "answer = await self.format(solution=solution)"

    async def __call__(self, solution: str) -> str:
        """Return the bare answer (the solution unchanged when the reply has no ``<answer>``).

        Raises:
            TypeError: ``solution`` is not a string.
        """
        require_str("format", "solution", solution)
        task_type = current().task_type
        if task_type == "code":
            return extract_code(solution, self.entry_point)
        request = PROMPTS.get(task_type, PROMPTS[""])
        reply = await self._ask(PROMPT.format(request=request, problem=self.problem_text, solution=solution))
        return extract_tag(reply, "answer") or solution
