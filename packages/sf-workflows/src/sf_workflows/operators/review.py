"""Review: critique a solution and return a revised one."""

from __future__ import annotations

from ._base import Operator, require_str
from ._context import current
from ._text import extract_code, extract_tag

PROMPT = """Review the solution to the problem below. Check it on four points:
1. correctness of every step and of the final answer;
2. completeness: nothing the problem asks for is missing;
3. logic and clarity of the reasoning;
4. the final answer's form: it states exactly what the problem asks for.
Then write the revised solution: the corrected solution if you found a mistake, otherwise the
same solution.

Problem:
{problem}

Solution:
{solution}

Reply in exactly this format:
<review>your critique along the four points</review>
<revised_solution>the full revised solution</revised_solution>"""


class Review(Operator):
    """Critique a previous solution and regenerate it."""

    name = "Review"
    attr = "review"
    call_format = "review(pre_solution: str) -> str"
    usage = (
        "Given a previous solution, reviews it (correctness, completeness, logic, answer form) "
        "and regenerates it."
    )
    example = "rev_solution = await self.review(pre_solution=solution)"

    async def __call__(self, pre_solution: str) -> str:
        """Return the revised solution.

        The previous one when the reply has no ``<revised_solution>`` (ScoreFlow returned ``""``
        there). For code tasks the revised solution is returned as extracted code.

        Raises:
            TypeError: ``pre_solution`` is not a string.
        """
        require_str("review", "pre_solution", pre_solution)
        if self.style.scoreflow:  # ScoreFlow: "" when the tag is missing; code tasks ask for final_code
            template = self.style.prompt("REVIEW_PROMPT")
            if current().task_type == "code":
                prompt = template.format(
                    problem=self.problem_text, entry_point=self.entry_point, solution=pre_solution
                )
                return (await self._ask_fields(prompt, ("thought", "final_code")))["final_code"]
            prompt = template.format(problem=self.problem_text, solution=pre_solution)
            return (await self._ask_fields(prompt, ("thought", "revised_solution")))["revised_solution"]
        reply = await self._ask(PROMPT.format(problem=self.problem_text, solution=pre_solution))
        revised = extract_tag(reply, "revised_solution")
        if not revised:
            return pre_solution
        if current().task_type == "code":
            return extract_code(revised, self.entry_point)
        return revised
