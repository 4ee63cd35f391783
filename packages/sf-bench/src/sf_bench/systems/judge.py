"""``sf bench run --judge``: ScoreFlow's test-time protocol as a scorer override.

ScoreFlow reports MATH, DROP and HotpotQA at test time as the accuracy of an LLM judge: an LLM
first extracts the final answer from the workflow's output, then a 0/1 judge compares it with
the gold answer (for DROP and HotpotQA its reported numbers are judge accuracy, not F1;
SCOREFLOW.md §4). :class:`LLMJudge` wraps sf-workflows' ``JudgeScorer`` so the harness can use it
in place of a dataset's official scorer (``Harness(scorers=...)``); the summary and ``run.json``
then label that dataset's metric ``llm-judge``. The official metric is still computed beside
it and kept in the record's metrics (``official``, and ``em``/``f1`` for DROP/HotpotQA, which
stay the EM/F1 columns), so both numbers come from one run.

The judge's calls cost money: their cost and tokens go to each run's ``scoring_cost`` /
``scoring_tokens``, never into the system's own cost. An empty answer scores 0 without asking
the judge. Lives in ``systems/`` because only this layer of sf-bench imports sf_workflows.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from sf_bench import registry
from sf_bench.errors import BenchConfigError
from sf_bench.types import Problem, Score

if TYPE_CHECKING:
    from sf_workflows.protocols import LLM

__all__ = ["METRIC", "LLMJudge", "judge_scorers", "judged_datasets"]


def judged_datasets() -> tuple[str, ...]:
    """The datasets ScoreFlow judges at test time.

    They are the registry entries with ``judged``; GSM8K and code keep their exact metrics.
    """
    return registry.with_flag("judged")


def __getattr__(name: str) -> Any:
    """``JUDGED_DATASETS``: :func:`judged_datasets`, read now."""
    if name == "JUDGED_DATASETS":
        return judged_datasets()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


METRIC = "llm-judge"
"""The metric label of judged datasets in summaries and ``run.json``."""


class LLMJudge:
    """Scorer: LLM extraction + 0/1 LLM judge (``value``), official metric beside it.

    Args:
        dataset: a dataset ScoreFlow judges (``math``, ``drop``, ``hotpotqa``: :func:`judged_datasets`).
        llm: An ``sf_workflows`` LLM (the run's executor unless ``--judge-model`` names another).

    Raises:
        BenchConfigError: ``dataset`` is not one ScoreFlow judges.
    """

    metric = METRIC

    def __init__(self, dataset: str, llm: LLM) -> None:
        """See the class docstring."""
        spec = registry.find(dataset)
        if spec is None or not spec.judged:
            raise BenchConfigError(
                f"--judge applies to {', '.join(judged_datasets())} (ScoreFlow's protocol), not {dataset}"
            )
        from sf_bench.scorers import text_scorer
        from sf_workflows.judge import JudgeScorer

        self.dataset = dataset
        self.llm = llm
        self._official = text_scorer(dataset)
        self._judge = JudgeScorer(
            llm,
            form=spec.answer_form,
            with_context=spec.judge_context,
            length_ratio=spec.judge_length_ratio,
        )

    async def __call__(self, problem: Problem, answer: str) -> Score:
        """Judge ``answer``.

        Raises only when the judge's endpoint fails (the run is then a scorer error, redone on
        resume).
        """
        official = self._official(problem, answer)
        metrics = dict(official.metrics)  # MATH's carry its own "official" (and "equiv") verdicts
        metrics.setdefault("official", float(official.value))
        if not answer.strip():
            return Score(value=0.0, metrics={**metrics, "judge": 0.0}, failure="empty", detail="empty answer")
        verdict = await self._judge(problem, answer)
        usage = verdict.usage
        return Score(
            value=float(verdict.value),
            metrics={**metrics, "judge": float(verdict.value)},
            failure=verdict.failure,
            detail=verdict.detail,
            cost=float(usage.cost),
            tokens=int(usage.prompt_tokens + usage.completion_tokens),
        )


def judge_scorers(datasets: Iterable[str], llm: LLM) -> dict[str, LLMJudge]:
    """An :class:`LLMJudge` for each of ``datasets`` that ScoreFlow judges.

    The others keep their official scorer.
    """
    judged = judged_datasets()
    return {name: LLMJudge(name, llm) for name in datasets if name in judged}
