"""ScoreFlow's test-time protocol, as an option: LLM answer extraction, then an LLM 0/1 judge.

ScoreFlow scores MATH, DROP and HotpotQA at test time with gpt-4o-mini: it first extracts the
final answer from the workflow's output, then asks "is this answer correct? output 1 or 0"
(anything else counts 0; for HotpotQA an answer 10x longer or shorter than the gold is 0).
Its reported QA numbers are therefore judge accuracy, not F1 (SCOREFLOW.md §4). The official
metrics stay sf-bench's default; this module gives the judge to callers that ask for it.

This module knows no dataset: what differs per dataset (the answer's form the extraction asks
for, whether the judge sees the passage, the length rule) is passed in by the caller; sf-bench
passes its registry entry's values (``sf_bench.systems.judge``).

:class:`JudgeScorer` returns an object with ``value``, ``metrics``, ``failure`` and ``detail``
(the shape of sf-bench's ``Score``), so it plugs in wherever a scorer is expected.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sf_workflows.protocols import LLM, ProblemLike
from sf_workflows.types import Usage

EXTRACT_PROMPT = """Extract the final answer from the response below, without any explanation.
{form}

Question:
{question}

Response:
{answer}

Final answer:"""

DEFAULT_FORM = "Write only the answer."
"""The extraction's instruction on the answer's form when the caller gives none."""

JUDGE_PROMPT = """Decide whether the predicted answer to the question is correct, given the
reference answer(s){context_note}. Equivalent forms (units, rounding, wording) count as correct.
Only output 1 (correct) or 0 (incorrect).

Question:
{question}
{context}
Reference answer(s): {golds}

Predicted answer: {prediction}

Output (1 or 0):"""


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    """The judge's decision, shaped like sf-bench's ``Score``."""

    value: float
    metrics: dict[str, float] = field(default_factory=dict[str, float])
    failure: str | None = None
    detail: str | None = None
    usage: Usage = field(default_factory=Usage)
    """Tokens and cost of the extraction and judge calls."""


def _question(problem: ProblemLike) -> str:
    extras: Mapping[str, Any] = getattr(problem, "extras", None) or {}
    return str(extras.get("question") or problem.prompt)


async def extract_answer(
    llm: LLM, problem: ProblemLike, answer: str, *, form: str = DEFAULT_FORM
) -> tuple[str, Usage]:
    """The final answer the LLM extracts from ``answer`` (ScoreFlow's extraction step).

    ``form`` tells it the answer's form (sf-bench: the dataset's ``answer_form``).
    """
    prompt = EXTRACT_PROMPT.format(form=form, question=_question(problem), answer=answer)
    completion = await llm.complete([{"role": "user", "content": prompt}], temperature=0.0)
    return completion.text.strip(), Usage.of(completion)


async def judge_answer(
    llm: LLM, problem: ProblemLike, prediction: str, golds: Sequence[str], *, with_context: bool = False
) -> tuple[float, str, Usage]:
    """ScoreFlow's 0/1 judge: ``(1.0 | 0.0, raw reply, usage)``; a reply other than 0/1 is 0.

    ``with_context``: show the judge the problem's ``extras`` ``passage`` (else ``context``).
    """
    extras: Mapping[str, Any] = getattr(problem, "extras", None) or {}
    context = ""
    if with_context:
        passage = extras.get("passage") or extras.get("context")
        if passage:
            context = f"\nContext:\n{passage if isinstance(passage, str) else passage!s}\n"
    prompt = JUDGE_PROMPT.format(
        question=_question(problem),
        context=context,
        context_note=" and the context" if context else "",
        golds=" | ".join(golds),
        prediction=prediction,
    )
    completion = await llm.complete([{"role": "user", "content": prompt}], temperature=0.0)
    reply = completion.text.strip()
    return (1.0 if reply == "1" else 0.0), reply, Usage.of(completion)


class JudgeScorer:
    """Score an answer the ScoreFlow test-time way: extract (LLM), then judge 0/1 (LLM).

    ``await scorer(problem, answer)`` → :class:`Verdict` with ``metrics = {"judge": v}``. Every
    call's usage is also added to :attr:`usage`.

    Args:
        llm: the judge (and extraction) LLM.
        extract: extract the final answer first.
        form: the extraction's instruction on the answer's form.
        with_context: the judge sees the problem's passage (DROP, HotpotQA).
        length_ratio: ScoreFlow's length rule (HotpotQA: 10): 0, without asking the judge, when
            the extracted answer is >= ``length_ratio`` times or <= 1/``length_ratio`` of the
            gold's length. None: no such rule.
    """

    def __init__(
        self,
        llm: LLM,
        *,
        extract: bool = True,
        form: str = DEFAULT_FORM,
        with_context: bool = False,
        length_ratio: float | None = None,
    ):
        self.llm = llm
        self.extract = extract
        self.form = form
        self.with_context = with_context
        self.length_ratio = length_ratio
        self.usage = Usage()

    async def __call__(self, problem: Any, answer: str) -> Verdict:
        """The verdict on ``answer`` against ``problem``'s ``answers`` (else its ``reference``).

        Errors of the LLM's ``complete`` propagate: an endpoint failure is never scored 0.
        """
        golds = [str(g) for g in getattr(problem, "answers", ())] or [str(getattr(problem, "reference", ""))]
        usage = Usage()
        prediction = answer
        if self.extract:
            prediction, used = await extract_answer(self.llm, problem, answer, form=self.form)
            usage = usage + used
        if self.length_ratio is not None and golds[0]:
            ratio = len(prediction) / max(1, len(golds[0]))
            if ratio >= self.length_ratio or ratio <= 1 / self.length_ratio:
                self.usage = self.usage + usage
                return Verdict(
                    value=0.0,
                    metrics={"judge": 0.0},
                    failure="judge_length",
                    detail=f"extracted {prediction!r}: length ratio {ratio:.2f} (ScoreFlow's rule)",
                    usage=usage,
                )
        value, reply, used = await judge_answer(
            self.llm, problem, prediction, golds, with_context=self.with_context
        )
        usage = usage + used
        self.usage = self.usage + usage
        return Verdict(
            value=value,
            metrics={"judge": value},
            failure=None if value else "judge",
            detail=f"extracted {prediction!r}; judge said {reply[:20]!r}",
            usage=usage,
        )
