"""The operator library: ``import sf_workflows.operators as operator``.

Workflows refer to operators as ``operator.Custom`` and get their LLM from ``create(config)``,
exactly as ScoreFlow's generated workflows do. This package uses only the standard library and
relative imports, because the same files are shipped into the sandbox (as a zip on ``sys.path``)
where workflows actually run.

| operator | call | returns |
|---|---|---|
| Custom | ``custom(instruction: str) -> str`` | the LLM reply |
| AnswerGenerate | ``answer_generate() -> str`` | thought + " So we have the final results: " + answer |
| CustomCodeGenerate | ``code_generate(instruction: str) -> str`` | extracted code |
| Programmer | ``programmer(analysis: str = 'None') -> str`` | code and its output |
| Test | ``test(solution: str) -> str`` | the solution, repaired against public tests |
| Review | ``review(pre_solution: str) -> str`` | the revised solution |
| Revise | ``revise(solution: str, feedback: str) -> str`` | the improved solution |
| ScEnsemble | ``sc_ensemble(solutions: List[str]) -> str`` | the most consistent solution |
| Format | ``format(solution: str) -> str`` | the bare final answer |
"""

from __future__ import annotations

from typing import Any

from ._base import Operator, problem_text
from ._context import RunContext, activate, current, deactivate
from .answer_generate import AnswerGenerate
from .custom import Custom
from .custom_code_generate import CustomCodeGenerate
from .format import Format
from .programmer import Programmer
from .review import Review
from .revise import Revise
from .sc_ensemble import ScEnsemble
from .test import Test

OPERATORS: dict[str, type[Operator]] = {
    cls.name: cls
    for cls in (
        Custom,
        AnswerGenerate,
        CustomCodeGenerate,
        Programmer,
        Test,
        Review,
        Revise,
        ScEnsemble,
        Format,
    )
}
"""Every operator by its class name."""


def create(config: Any = None) -> Any:
    """The executor LLM for a workflow: ScoreFlow's ``create(config)``.

    ``config`` is what the runner passed to ``Workflow(config, problem)``: an LLM (anything with
    ``async complete``) is returned as is; otherwise the running workflow's LLM is returned.
    """
    if config is not None and hasattr(config, "complete"):
        return config
    llm = getattr(config, "llm", None)
    return llm if llm is not None else current().llm


__all__ = [
    "OPERATORS",
    "AnswerGenerate",
    "Custom",
    "CustomCodeGenerate",
    "Format",
    "Operator",
    "Programmer",
    "Review",
    "Revise",
    "RunContext",
    "ScEnsemble",
    "Test",
    "activate",
    "create",
    "current",
    "deactivate",
    "problem_text",
]
