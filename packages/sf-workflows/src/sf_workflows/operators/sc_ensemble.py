"""ScEnsemble: self-consistency vote over candidate solutions."""

from __future__ import annotations

import string
from collections.abc import Sequence
from typing import cast

from ._base import Operator
from ._text import extract_tag

PROMPT = """Several solutions to the same problem are given below, each under a letter.
Compare them and find the answer that most of them agree on (the most consistent one).

Problem:
{problem}

Solutions:
{solutions}
Reply in exactly this format:
<thought>which answers agree, and why</thought>
<solution_letter>the single letter of the most consistent solution</solution_letter>"""

MAX_SOLUTIONS = len(string.ascii_uppercase)


class ScEnsemble(Operator):
    """Pick the most consistent of several solutions (Self-Consistency, Universal SC)."""

    name = "ScEnsemble"
    attr = "sc_ensemble"
    call_format = "sc_ensemble(solutions: List[str]) -> str"
    usage = "Evaluates every solution, then selects the most consistent one in the solution list."
    example = "ensembled_solution = await self.sc_ensemble(solutions=solution_list)"

    async def __call__(self, solutions: Sequence[str]) -> str:
        """Return the chosen solution, unchanged.

        A single solution is returned without an LLM call. An invalid letter in the reply
        falls back to the first solution (ScoreFlow raised ``KeyError`` there).

        Raises:
            TypeError: ``solutions`` is not a list/tuple.
            ValueError: it is empty or has more than 26 items.
        """
        given = cast(object, solutions)  # a workflow is untrusted code: check what it really passed
        if isinstance(given, str) or not isinstance(given, Sequence):
            raise TypeError(
                f"sc_ensemble: argument 'solutions' must be a list of str, got {type(solutions).__name__}"
            )
        items = [s if isinstance(s, str) else str(s) for s in cast("Sequence[object]", given)]
        if not items:
            raise ValueError("sc_ensemble: 'solutions' is empty; pass at least one solution")
        if len(items) > MAX_SOLUTIONS:
            raise ValueError(f"sc_ensemble: at most {MAX_SOLUTIONS} solutions, got {len(items)}")
        if self.style.scoreflow:
            return await self._scoreflow(solutions, items)
        if len(items) == 1:
            return items[0]
        letters = string.ascii_uppercase
        listing = "".join(f"{letters[i]}:\n{s}\n\n" for i, s in enumerate(items))
        reply = await self._ask(PROMPT.format(problem=self.problem_text, solutions=listing))
        letter = (extract_tag(reply, "solution_letter") or "").strip().strip(".():").upper()[:1]
        index = letters.find(letter) if letter else -1
        return items[index] if 0 <= index < len(items) else items[0]

    async def _scoreflow(self, solutions: Sequence[str], items: list[str]) -> str:
        r"""ScoreFlow's ScEnsemble: the solution its LLM call chose.

        Always one call (also for one solution), solutions listed as
        ``"A: \n<solution>\n\n\n"``, and an invalid letter raises ``KeyError`` as there (the
        run then fails and scores 0).
        """
        listing = "".join(f"{chr(65 + i)}: \n{s}\n\n\n" for i, s in enumerate(items))
        prompt = self.style.prompt("SC_ENSEMBLE_PROMPT").format(
            problem=self.scoreflow_problem, solutions=listing
        )
        letter = (await self._ask_fields(prompt, ("thought", "solution_letter")))["solution_letter"]
        letter = letter.strip().upper()
        index = ord(letter) - 65 if len(letter) == 1 else -1
        if not 0 <= index < len(items):
            raise KeyError(f"sc_ensemble: the LLM chose {letter!r}, not one of the solutions' letters")
        return solutions[index]
