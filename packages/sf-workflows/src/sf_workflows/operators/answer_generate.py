"""AnswerGenerate: step-by-step thought, then a short answer."""

from __future__ import annotations

from ._base import Operator
from ._text import extract_tag

PROMPT = """Think about the question below step by step, then give the answer.
Reply in exactly this format:
<thought>your step-by-step reasoning</thought>
<answer>the final answer only, as short as possible (a number, a name, a short phrase)</answer>

Question:
{input}"""

SEPARATOR = "\n So we have the final results: "
"""ScoreFlow's joint between thought and answer; downstream answer extraction relies on it."""


class AnswerGenerate(Operator):
    """Answer the bound problem with a reasoning trace and a concise final answer."""

    name = "AnswerGenerate"
    attr = "answer_generate"
    call_format = "answer_generate() -> str"
    usage = "Thinks step by step about the problem and gives a concise final answer (thought + answer)."
    example = "answer = await self.answer_generate()"

    async def __call__(self, *, temperature: float | None = None) -> str:
        r"""Returns ``thought + "\n So we have the final results: " + answer``.

        When the reply lacks the tags, the whole reply stands in for the thought and the answer
        is empty.
        """
        if self.style.scoreflow:  # ScoreFlow: xml_fill over (thought, answer); a missing tag is ""
            template = self.style.prompt("ANSWER_GENERATION_PROMPT")
            fields = await self._ask_fields(template.format(input=self.problem_text), ("thought", "answer"))
            return fields["thought"] + SEPARATOR + fields["answer"]
        reply = await self._ask(PROMPT.format(input=self.problem_text), temperature=temperature)
        thought = extract_tag(reply, "thought")
        answer = extract_tag(reply, "answer")
        if thought is None and answer is None:
            thought, answer = reply.strip(), ""
        return (thought or "") + SEPARATOR + (answer or "")
