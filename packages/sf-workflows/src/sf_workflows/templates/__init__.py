"""Shipped reference workflows: the paper's baselines and ScoreFlow's observed best structures.

They double as the fixed-template generator (sf-bench ``--generator template:NAME``).

| name | calls | structure |
|---|---|---|
| ``io`` | 1 | the problem as is |
| ``cot`` | 1 | step-by-step instruction |
| ``cot_sc`` | 6 | 5 CoT samples at T=0.7 + ScEnsemble |
| ``medprompt`` | 8 | 5 CoT samples + ScEnsemble over 3 shuffled orders, majority (no kNN few-shot) |
| ``multipersona`` | 4 | two personas debate one round, a moderator decides |
| ``self_refine`` | 5 | solve, then 2× (feedback, Revise) |
| ``scoreflow`` | 4–6+ | ScoreFlow's majority-optimal graph per task type (SCOREFLOW.md §2.1) |
| ``base`` | 1 | the generator prompt's template (one-operator baseline) |
"""

from __future__ import annotations

from importlib import resources

from sf_workflows.errors import WorkflowConfigError
from sf_workflows.types import TASK_TYPES

TEMPLATE_NAMES = ("io", "cot", "cot_sc", "medprompt", "multipersona", "self_refine", "scoreflow", "base")
_ALIASES = {
    "cot-sc": "cot_sc",
    "self-refine": "self_refine",
    "scoreflow-best": "scoreflow",
    "best": "scoreflow",
    "template": "base",
}


def canonical_name(name: str) -> str:
    """``name`` with aliases resolved (``cot-sc`` → ``cot_sc``).

    Raises:
        WorkflowConfigError: unknown name.
    """
    key = _ALIASES.get(name.lower(), name.lower())
    if key not in TEMPLATE_NAMES:
        raise WorkflowConfigError(f"unknown workflow template {name!r}; known: {', '.join(TEMPLATE_NAMES)}")
    return key


def get_template(name: str, task_type: str) -> str:
    """The source of the shipped workflow ``name`` for ``task_type`` (``code``, ``math``, ``qa``).

    Raises:
        WorkflowConfigError: unknown name or task type.
    """
    key = canonical_name(name)
    if task_type not in TASK_TYPES:
        raise WorkflowConfigError(f"task type must be one of {', '.join(TASK_TYPES)}, got {task_type!r}")
    if key == "base":
        from sf_workflows.generator.prompt import template_source

        return template_source(task_type)
    return (
        resources.files(__name__)
        .joinpath("workflows", f"{key}.{task_type}.workflow")
        .read_text(encoding="utf-8")
    )


__all__ = ["TEMPLATE_NAMES", "canonical_name", "get_template"]
