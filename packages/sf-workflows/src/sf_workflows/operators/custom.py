"""Custom: one LLM call with a free instruction in front of the problem."""

from __future__ import annotations

from ._base import Operator, require_str

PROMPT = "{instruction}\n\n{problem}"
"""Ours: a blank line between instruction and problem. The ``scoreflow`` style concatenates
them with no separator (``instruction + problem``), as ScoreFlow does."""


class Custom(Operator):
    """Generate anything from the bound problem and a modifiable instruction."""

    name = "Custom"
    attr = "custom"
    call_format = "custom(instruction: str) -> str"
    usage = "Generates anything based on the fixed input problem and a modifiable instruction."
    example = (
        'solution = await self.custom(instruction="Solve this problem step by step, explaining each step.")'
    )

    async def __call__(self, instruction: str, *, temperature: float | None = None) -> str:
        """Ask the LLM ``instruction`` followed by the problem (just the problem if it is empty).

        Args:
            instruction: Text put before the problem (may embed earlier operators' outputs).
            temperature: Sampling temperature for this call; ``None`` keeps the executor's (0).

        Returns:
            The LLM's reply, unchanged.

        Raises:
            TypeError: ``instruction`` is not a string.
        """
        require_str("custom", "instruction", instruction)
        if self.style.scoreflow:
            return await self._ask(instruction + self.scoreflow_problem, temperature=temperature)
        prompt = (
            PROMPT.format(instruction=instruction, problem=self.problem_text)
            if instruction
            else self.problem_text
        )
        return await self._ask(prompt, temperature=temperature)
