"""ScoreFlow's test-time protocol, as an option: LLM answer extraction, then an LLM 0/1 judge.

ScoreFlow scores MATH, DROP and HotpotQA at test time with gpt-4o-mini: it first extracts the
final answer from the workflow's output, then asks "is this answer correct? output 1 or 0"
(anything else counts 0; for HotpotQA an answer 10x longer or shorter than the gold is 0).
Its reported QA numbers are therefore judge accuracy, not F1 (SCOREFLOW.md §4). The official
metrics stay sf-bench's default; this module gives the judge to callers that ask for it.

:class:`JudgeScorer` returns an object with ``value``, ``metrics``, ``failure`` and ``detail``
(the shape of sf-bench's ``Score``), so it plugs in wherever a scorer is expected.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sf_workflows.types import Usage

JUDGED_DATASETS = ("math", "drop", "hotpotqa")

EXTRACT_PROMPT = """Extract the final answer from the response below, without any explanation.
{form}

Question:
{question}

Response:
{answer}

Final answer:"""

EXTRACT_FORMS = {
    "math": "Write it in LaTeX inside \\boxed{{}}.",
    "drop": "Write only the answer: a number, a date, or a short span of the passage.",
    "hotpotqa": "Write only the answer: a short span (a name, a date, yes or no).",
}

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


def _question(problem: Any) -> str:
    extras: Mapping[str, Any] = getattr(problem, "extras", None) or {}
    return str(extras.get("question") or problem.prompt)


async def extract_answer(llm: Any, problem: Any, answer: str) -> tuple[str, Usage]:
    """The final answer the LLM extracts from ``answer`` (ScoreFlow's extraction step)."""
    dataset = str(getattr(problem, "dataset", ""))
    prompt = EXTRACT_PROMPT.format(
        form=EXTRACT_FORMS.get(dataset, "Write only the answer."), question=_question(problem), answer=answer
    )
    completion = await llm.complete([{"role": "user", "content": prompt}], temperature=0.0)
    return completion.text.strip(), Usage.of(completion)


async def judge_answer(
    llm: Any, problem: Any, prediction: str, golds: Sequence[str]
) -> tuple[float, str, Usage]:
    """ScoreFlow's 0/1 judge: ``(1.0 | 0.0, raw reply, usage)``; a reply other than 0/1 is 0."""
    dataset = str(getattr(problem, "dataset", ""))
    extras: Mapping[str, Any] = getattr(problem, "extras", None) or {}
    context = ""
    if dataset in ("drop", "hotpotqa"):
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

    ``await scorer(problem, answer)`` → :class:`Verdict` with ``metrics = {"judge": v}``. For
    HotpotQA, ScoreFlow's length rule applies first (0 when the extracted answer is >= 10x or
    <= 0.1x the gold's length). Every call's usage is also added to :attr:`usage`.
    """

    def __init__(self, llm: Any, *, extract: bool = True):
        self.llm = llm
        self.extract = extract
        self.usage = Usage()

    async def __call__(self, problem: Any, answer: str) -> Verdict:
        """The verdict on ``answer`` against ``problem``'s ``answers`` (else its ``reference``).

        Errors of the LLM's ``complete`` propagate: an endpoint failure is never scored 0.
        """
        golds = [str(g) for g in getattr(problem, "answers", ())] or [str(getattr(problem, "reference", ""))]
        usage = Usage()
        prediction = answer
        if self.extract:
            prediction, used = await extract_answer(self.llm, problem, answer)
            usage = usage + used
        if str(getattr(problem, "dataset", "")) == "hotpotqa" and golds[0]:
            ratio = len(prediction) / max(1, len(golds[0]))
            if ratio >= 10 or ratio <= 0.1:
                self.usage = self.usage + usage
                return Verdict(
                    value=0.0,
                    metrics={"judge": 0.0},
                    failure="judge_length",
                    detail=f"extracted {prediction!r}: length ratio {ratio:.2f} (ScoreFlow's rule)",
                    usage=usage,
                )
        value, reply, used = await judge_answer(self.llm, problem, prediction, golds)
        usage = usage + used
        self.usage = self.usage + usage
        return Verdict(
            value=value,
            metrics={"judge": value},
            failure=None if value else "judge",
            detail=f"extracted {prediction!r}; judge said {reply[:20]!r}",
            usage=usage,
        )
