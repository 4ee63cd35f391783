"""sf-workflows: ScoreFlow-shaped agent workflows, run safely.

A workflow is Python source holding ``class Workflow`` (constructor ``(config, problem)``,
``async def run_workflow(self) -> str``) built from operators. Run it with :func:`run_workflow`
inside sf-sandbox; operator LLM calls come back to the host's :class:`Executor`.

``import sf_workflows`` does not import ``openai`` (it loads on the first request).
"""

from sf_workflows.errors import (
    ExecutorError,
    MissingDependencyError,
    WorkflowConfigError,
    WorkflowError,
    WorkflowParseError,
)
from sf_workflows.executor import Executor, ExecutorConfig, Price, PriceTable, ResponseCache
from sf_workflows.generator import (
    DEFAULT_OPERATORS,
    ValidationReport,
    build_generator_prompt,
    parse_workflow,
    template_source,
    validate_workflow,
)
from sf_workflows.llm_calls import host_calls
from sf_workflows.operators import OPERATORS
from sf_workflows.protocols import LLM, Completion, ProblemLike
from sf_workflows.remote import RemoteHost, WorkflowHost, remote_host
from sf_workflows.run import (
    open_sandbox,
    run_workflow,
    run_workflow_unsafe,
    run_workflows,
    runtime_preload,
)
from sf_workflows.status import OutcomeStatus
from sf_workflows.templates import TEMPLATE_NAMES, get_template
from sf_workflows.types import Outcome, Task, Usage, as_task

__all__ = [
    "DEFAULT_OPERATORS",
    "LLM",
    "OPERATORS",
    "TEMPLATE_NAMES",
    "Completion",
    "Executor",
    "ExecutorConfig",
    "ExecutorError",
    "MissingDependencyError",
    "Outcome",
    "OutcomeStatus",
    "Price",
    "PriceTable",
    "ProblemLike",
    "RemoteHost",
    "ResponseCache",
    "Task",
    "Usage",
    "ValidationReport",
    "WorkflowConfigError",
    "WorkflowError",
    "WorkflowHost",
    "WorkflowParseError",
    "as_task",
    "build_generator_prompt",
    "get_template",
    "host_calls",
    "open_sandbox",
    "parse_workflow",
    "remote_host",
    "run_workflow",
    "run_workflow_unsafe",
    "run_workflows",
    "runtime_preload",
    "template_source",
    "validate_workflow",
]
