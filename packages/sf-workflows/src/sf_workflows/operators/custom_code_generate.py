"""CustomCodeGenerate: write the function a code task asks for."""

from __future__ import annotations

from ._base import Operator, require_str
from ._text import extract_code

PROMPT = """{instruction}
You have the following task:
{problem}

Write a complete, self-contained Python solution that defines `{entry_point}` exactly as the task
specifies. Make sure that it is correct (think about edge cases), that it only uses the standard
library, and that it has no test code, input() calls or prints. Put the code in one ```python block."""


class CustomCodeGenerate(Operator):
    """Generate code for the bound code problem, guided by an instruction."""

    name = "CustomCodeGenerate"
    attr = "code_generate"
    call_format = "code_generate(instruction: str) -> str"
    usage = "Generates code for the problem based on a customized instruction; the output is Python code."
    example = (
        'solution = await self.code_generate(instruction="Write a correct, efficient solution step by step.")'
    )

    async def __call__(self, instruction: str, *, temperature: float | None = None) -> str:
        """Ask for code and return it extracted from the reply (see ``extract_code``).

        Raises:
            TypeError: ``instruction`` is not a string.
        """
        require_str("code_generate", "instruction", instruction)
        entry = self.entry_point or "solution"
        if self.style.scoreflow:  # instruction + "You have the following task: " + prompt + note
            note = self.style.prompt("CustomCodeGenerate_PROMPT")
            reply = await self._ask(instruction + self.scoreflow_problem + note, temperature=temperature)
            return extract_code(reply, entry)
        reply = await self._ask(
            PROMPT.format(instruction=instruction, problem=self.problem_text, entry_point=entry),
            temperature=temperature,
        )
        return extract_code(reply, entry)
