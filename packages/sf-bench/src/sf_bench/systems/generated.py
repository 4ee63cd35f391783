"""What every outside workflow generator shares: source normalisation, per-slot failures, the system.

A generator we did not write (``--generator module:function``, ``file:PATH``, ``aflow:PATH``)
may fail for one problem and not for the others. Such a failure is kept *in place of the
source* as a one-line marker (:func:`failed_source`), so it is saved with the generated
workflows (``<out>/<dataset>/workflows.jsonl``) like any source, survives a resume, and
:class:`GeneratedWorkflowSystem` turns it into that sample's recorded error
(``solver_error``, score 0, the reason in ``error``) without running anything. The batch goes
on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sf_bench.errors import BenchError
from sf_bench.protocols import Answer
from sf_bench.systems.template import SandboxRunner, WorkflowSystem
from sf_bench.types import Problem

if TYPE_CHECKING:
    from sf_bench.protocols import WorkflowGenerator

__all__ = [
    "FAILED_MARK",
    "GeneratedWorkflowSystem",
    "GeneratorFailure",
    "failed_source",
    "generation_failure",
    "normalize_source",
]

FAILED_MARK = "# sf-bench: no workflow: "
"""First characters of a source slot that holds a generation failure instead of a workflow."""


class GeneratorFailure(BenchError):
    """The generator under test gave no usable workflow for this (problem, sample).

    The system's own failure, like a workflow that raises: recorded as ``solver_error`` with
    score 0, never retried.
    """


def failed_source(reason: str) -> str:
    """The marker saved in place of a workflow the generator failed to give (one line)."""
    return FAILED_MARK + " ".join(str(reason).split())[:2000] + "\n"


def generation_failure(source: str) -> str | None:
    """The reason saved by :func:`failed_source`, or None for a real source."""
    if source.startswith(FAILED_MARK):
        return source[len(FAILED_MARK) :].strip()
    return None


def normalize_source(text: str) -> str:
    """A workflow as given, reduced to its source (``sf_workflows.parse_workflow``).

    It may be given as ScoreFlow's ``<graph>…</graph>`` reply, a fenced block, or bare
    ``class Workflow`` source.

    Text with no workflow in it is returned unchanged: the runner then scores it 0 with the
    validator's reason (``invalid``), as for any invalid workflow.
    """
    from sf_workflows import WorkflowParseError, parse_workflow

    try:
        return parse_workflow(text)
    except WorkflowParseError:
        return text


class GeneratedWorkflowSystem(WorkflowSystem):
    """:class:`~sf_bench.systems.template.WorkflowSystem` for outside generators.

    A slot holding a generation failure raises :class:`GeneratorFailure` (the sample's recorded
    error) instead of running; every other slot runs in the sandbox as usual.

    ``samples`` (optional) gives the CLI its default ``--k`` (a file of workflows: how many it
    holds per problem).
    """

    def __init__(self, generator: WorkflowGenerator, runner: SandboxRunner, *, name: str) -> None:
        """Pair ``generator`` with ``runner`` under the run label ``name``."""
        super().__init__(generator, runner, name=name)
        counter = getattr(generator, "samples", None)
        if callable(counter):
            self.samples = counter

    async def answer(self, problem: Problem, sample: int) -> Answer:
        """Run workflow ``sample`` of ``problem``.

        Raises:
            GeneratorFailure: the generator gave no workflow for this slot (the reason says why).
        """
        source = self._sources[problem.id][sample]
        reason = generation_failure(source)
        if reason is not None:
            raise GeneratorFailure(reason)
        return await super().answer(problem, sample)
