"""The generator prompt: template, operator catalogue, the task (without its context), rules.

Structure follows ScoreFlow's ``START_PORMPT + task + END_PROMPT`` (SCOREFLOW.md §2.1) so that a
generator trained on ScoreFlow's prompts sees the same layout; the wording is our own. The
prompt is plain text (no chat template) ending where the graph begins.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from sf_workflows.errors import WorkflowConfigError
from sf_workflows.generator.validate import ALLOWED_IMPORTS, DEFAULT_OPERATORS
from sf_workflows.operators import OPERATORS
from sf_workflows.types import TASK_TYPES, as_task

if TYPE_CHECKING:
    from sf_workflows.generator.scoreflow import OfficialStrings
    from sf_workflows.protocols import ProblemLike

IMPORTS_SENTENCE = ", ".join(sorted(ALLOWED_IMPORTS)[:-1]) + " or " + sorted(ALLOWED_IMPORTS)[-1]
"""The modules the prompt says a workflow may import: exactly the validator's allowlist."""

TASK_LABELS = {"math": "Problem", "qa": "Question", "code": "Task"}

_BASELINE_CALLS = {
    "Custom": 'solution = await self.custom(instruction="Can you solve this problem by breaking it down '
    'into detailed steps and explaining the reasoning behind each step?")',
    "AnswerGenerate": "solution = await self.answer_generate()",
    "CustomCodeGenerate": 'solution = await self.code_generate(instruction="Can you analyze this problem '
    'step by step and generate the code?")',
}
_PREFERRED = {
    "math": ("Custom", "AnswerGenerate"),
    "qa": ("AnswerGenerate", "Custom"),
    "code": ("CustomCodeGenerate", "Custom"),
}

COMPLEXITY = {
    "math": "The graph must make between 3 and 8 LLM calls in total.",
    "qa": "The graph must make between 3 and 8 LLM calls in total.",
    "code": "The graph must make fewer than 7 LLM calls in total, and loops must run at most 3 times.",
}


def resolve_operators(task_type: str, operators: Sequence[str] | None = None) -> tuple[str, ...]:
    """The operator names to offer: ``operators`` checked, or the task type's default set.

    Raises:
        WorkflowConfigError: an unknown task type or operator name.
    """
    if task_type not in TASK_TYPES:
        raise WorkflowConfigError(f"task type must be one of {', '.join(TASK_TYPES)}, got {task_type!r}")
    names = tuple(operators) if operators is not None else DEFAULT_OPERATORS[task_type]
    unknown = [n for n in names if n not in OPERATORS]
    if unknown:
        raise WorkflowConfigError(f"unknown operators {', '.join(unknown)}; known: {', '.join(OPERATORS)}")
    if not names:
        raise WorkflowConfigError("offer at least one operator")
    return names


def template_source(task_type: str, operators: Sequence[str] | None = None) -> str:
    """The template workflow shown to the generator (ScoreFlow's template).

    Every offered operator is built in ``__init__``, and ``run_workflow`` is a one-operator
    baseline.
    """
    names = resolve_operators(task_type, operators)
    lines = [
        "class Workflow:",
        "    def __init__(",
        "        self,",
        "        config,",
        "        problem",
        "    ) -> None:",
        "        self.problem = problem",
        "        self.llm = create(config)",
    ]
    for name in names:
        cls = OPERATORS[name]
        lines.append(f"        self.{cls.attr} = operator.{name}(self.llm, self.problem)")
    first = next((n for n in _PREFERRED[task_type] if n in names), None)
    if first is None:
        first = next((n for n in names if n in _BASELINE_CALLS), None)
    call = _BASELINE_CALLS.get(first or "", None)
    if call is None:
        raise WorkflowConfigError(
            "the operator set needs one of Custom, AnswerGenerate or CustomCodeGenerate"
        )
    lines += [
        "",
        "    async def run_workflow(self):",
        '        """',
        "        This is a workflow graph.",
        '        """',
        f"        {call}",
        "        return solution",
    ]
    return "\n".join(lines) + "\n"


def operator_catalogue(operators: Sequence[str]) -> str:
    """Numbered operator docs: name, usage, the exact call format, an example call."""
    parts: list[str] = []
    for i, name in enumerate(operators, 1):
        cls = OPERATORS[name]
        parts.append(
            f"{i}. {name}:\nUsage: {cls.usage}\nFormat MUST follow: {cls.call_format}\n"
            f"For example:\n{cls.example}\n"
            "The output can serve as the input of the next operators or as the final output."
        )
    return "\n".join(parts)


def build_generator_prompt(
    problem: ProblemLike, operators: Sequence[str] | None = None, *, official: OfficialStrings | None = None
) -> str:
    """The prompt asking a generator for one workflow for ``problem``.

    Args:
        problem: A :class:`~sf_workflows.Task` or duck-typed problem. For QA only the question
            is shown (no context passages), as ScoreFlow does.
        operators: Operator names to offer (default: ScoreFlow's set for the task type).
        official: ScoreFlow's strings for the dataset
            (:func:`sf_workflows.generator.scoreflow.load_official`): the prompt is then
            ScoreFlow's, byte for byte (``START_PORMPT + task text + END_PROMPT``), and
            ``operators`` must be ``None`` (ScoreFlow's prompt fixes its operator set).

    Returns:
        Plain text ending with the line after which the generator writes ``<graph>…</graph>``.

    Raises:
        WorkflowConfigError: unknown operators, or ``operators`` given with ``official``.
    """
    if official is not None:
        from sf_workflows.generator.scoreflow import generator_prompt

        if operators is not None:
            raise WorkflowConfigError(
                "ScoreFlow's generator prompt fixes its operators; do not pass operators"
            )
        return generator_prompt(official, problem)
    task = as_task(problem)
    names = resolve_operators(task.task_type, operators)
    template = template_source(task.task_type, names)
    rules = [
        "**Base your graph on the template and make sure it runs without errors.** Do NOT import "
        "operator or create: they are already provided. Use only the operators listed above, called "
        "exactly in their format; do not load other operators and do not import other modules than "
        f"{IMPORTS_SENTENCE}.",
        "**Using several operators at the right points improves results.** Consider Python loops (for, "
        "list comprehensions) to generate several solutions to ensemble, and control flow (if/else, "
        "loops) for a richer graph.",
        f"**The graph complexity should match the problem's.** {COMPLEXITY[task.task_type]} Complex "
        "graphs can do better, but passing too little information between operators loses the solution.",
        "**Instructions given to operators should make the agent think step by step.** Do not ask one "
        'call for several answers. Calls are independent, so do not write instructions like "generate '
        'another/a different answer" or "give the second answer".',
        "**Your graph must be optimized and different from the template.**",
        "**Your graph must not contain any information about this particular problem.** The problem is "
        "passed to the workflow as `problem` (self.problem) and every operator already receives it; "
        "another agent will execute the workflow.",
        "Output only the graph, inside <graph> and </graph>.",
    ]
    return (
        "Your objective is to output a workflow graph, based on the following template:\n\n"
        f"<graph>\n{template}</graph>\n\n"
        "Here is an introduction to the operators you can use (these are all you can use; do not create new "
        "operators):\n"
        f"{operator_catalogue(names)}\n\n"
        "We have the problem input as follows, but your output graph must not contain any specific "
        "information about this problem.\n"
        f"{TASK_LABELS[task.task_type]}: {task.generator_text}\n\n"
        "You need to notice:\n\n" + "\n\n".join(rules) + "\n\n"
        "Here is the graph without any problem information:\n"
    )
