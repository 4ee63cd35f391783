"""LLM answer extraction before the official scorer: ScoreFlow's optimisation-time scoring.

At optimisation time ScoreFlow does not score a workflow's raw output: an LLM first extracts
the final answer from it (``ScoreFlow/scripts/<DS>/extraction.py``), and that is scored (token
F1 for DROP/HotpotQA, the boxed-answer rule for MATH, the last number for GSM8K). A wordy but
correct answer gets F1 1 instead of 0.13. :class:`LLMExtract` is that step as a scorer override
for the harness (``Harness(scorers=...)``, ``sf bench run --extract``, the ``sf train`` loop).

It is **not** the official metric, so it is a metric of its own: ``f1+llm-extract`` (DROP,
HotpotQA), ``math+llm-extract``, ``gsm8k+llm-extract``; the summary and ``run.json`` say so.
The record keeps the official score of the raw text beside it (metric ``raw``) and the
extracted answer in ``detail``. Extraction calls go to the executor: their cost and tokens are
recorded as each run's ``scoring_cost``/``scoring_tokens``; the executor's on-disk cache
answers a repeated extraction without a new request.

Two prompt styles: ``ours`` (``sf_workflows.judge.extract_answer``) and ``scoreflow`` (the
official ``extraction.py`` prompt read from your ScoreFlow checkout, sent as ScoreFlow's
``Custom`` sends it: "You are a helpful assistant." then the prompt). Lives in ``systems/``
because only this layer of sf-bench imports sf_workflows.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from sf_bench import registry
from sf_bench.errors import BenchConfigError
from sf_bench.types import Problem, Score

if TYPE_CHECKING:
    from sf_workflows.protocols import LLM

__all__ = ["LLMExtract", "extract_scorers", "extracted_datasets"]


def extracted_datasets() -> tuple[str, ...]:
    """The datasets ScoreFlow extracts answers for.

    They are the registry entries with an ``extract_metric`` (code datasets are scored by their
    tests).
    """
    return tuple(s.name for s in registry.specs() if s.extract_metric is not None)


def __getattr__(name: str) -> Any:
    """Read now from the registry: ``EXTRACTED_DATASETS`` and ``METRICS``.

    ``EXTRACTED_DATASETS`` is :func:`extracted_datasets`; ``METRICS`` the metric label of each
    extracted dataset (``f1+llm-extract``...).
    """
    if name == "EXTRACTED_DATASETS":
        return extracted_datasets()
    if name == "METRICS":
        return {s.name: s.extract_metric for s in registry.specs() if s.extract_metric is not None}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


STYLES = ("ours", "scoreflow")


class LLMExtract:
    """Scorer: the executor extracts the final answer, the official scorer scores it.

    Args:
        dataset: one ScoreFlow extracts for (gsm8k, math, drop, hotpotqa: :func:`extracted_datasets`).
        llm: The executor (an ``sf_workflows`` LLM: ``async complete(messages, **params)``).
        style: ``ours`` or ``scoreflow`` (the official prompt; needs ``official``).
        official: ``sf_workflows.generator.scoreflow.load_official(dataset)`` for ``scoreflow``.

    Raises:
        BenchConfigError: an unknown dataset or style, or ``scoreflow`` without ``official``.
    """

    def __init__(self, dataset: str, llm: LLM, *, style: str = "ours", official: Any = None) -> None:
        """See the class docstring."""
        spec = registry.find(dataset)
        if spec is None or spec.extract_metric is None:
            raise BenchConfigError(
                f"answer extraction applies to {', '.join(extracted_datasets())}, not {dataset}"
            )
        if style not in STYLES:
            raise BenchConfigError(f"extraction style must be one of {', '.join(STYLES)}, got {style!r}")
        if style == "scoreflow" and official is None:
            raise BenchConfigError("the scoreflow extraction style needs ScoreFlow's strings (official=...)")
        from sf_bench.scorers import text_scorer

        self.dataset = dataset
        self.llm = llm
        self.style = style
        self.official = official
        self.metric = spec.extract_metric
        self.form = spec.answer_form
        self._score = text_scorer(dataset)

    async def extract(self, problem: Problem, answer: str) -> tuple[str, Any]:
        """``(extracted answer, usage)`` of one extraction call."""
        from sf_workflows.types import Usage

        if self.style == "ours":
            from sf_workflows.judge import extract_answer

            return await extract_answer(self.llm, problem, answer, form=self.form)
        from sf_workflows.generator.scoreflow import extraction_prompt, generator_input_text
        from sf_workflows.operators._style import SCOREFLOW_SYSTEM_MESSAGE

        prompt = extraction_prompt(self.official, generator_input_text(problem), answer)
        messages = [
            {"role": "system", "content": SCOREFLOW_SYSTEM_MESSAGE},
            {"role": "user", "content": prompt},  # Custom(llm, problem="") : instruction + ""
        ]
        completion = await self.llm.complete(messages, temperature=0.0)
        return str(completion.text), Usage.of(completion)

    async def __call__(self, problem: Problem, answer: str) -> Score:
        """Extract, then score; an empty answer scores 0 without a call.

        Raises only when the executor fails (the run is then a scorer error, redone on resume).
        """
        raw = self._score(problem, answer)
        if not answer.strip():
            return Score(value=0.0, metrics={**dict(raw.metrics), "raw": 0.0}, detail="empty answer")
        extracted, usage = await self.extract(problem, answer)
        scored = self._score(problem, extracted)
        return Score(
            value=float(scored.value),
            metrics={**dict(scored.metrics), "raw": float(raw.value)},
            failure=scored.failure,
            detail=f"extracted {extracted[:200]!r}",
            cost=float(usage.cost),
            tokens=int(usage.prompt_tokens + usage.completion_tokens),
        )


def extract_scorers(
    datasets: Iterable[str], llm: LLM, *, style: str = "ours", source: Any = None
) -> dict[str, LLMExtract]:
    """An :class:`LLMExtract` for each of ``datasets`` ScoreFlow extracts (others keep theirs).

    ``style="scoreflow"`` reads the official prompts from the checkout ``source`` (or
    ``$SF_SCOREFLOW_SOURCE``).

    Raises:
        BenchConfigError: a bad style, or no usable ScoreFlow checkout for ``scoreflow``.
    """
    out: dict[str, LLMExtract] = {}
    extracted = extracted_datasets()
    for name in datasets:
        if name not in extracted:
            continue
        official = None
        if style == "scoreflow":
            from sf_workflows.errors import WorkflowConfigError
            from sf_workflows.generator.scoreflow import load_official

            try:
                official = load_official(name, source)
            except WorkflowConfigError as exc:
                raise BenchConfigError(str(exc)) from exc
        out[name] = LLMExtract(name, llm, style=style, official=official)
    return out
