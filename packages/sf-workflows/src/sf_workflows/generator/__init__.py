"""Generator side: the prompt builder, the reply parser and the validator."""

from sf_workflows.generator.parse import parse_workflow
from sf_workflows.generator.prompt import (
    build_generator_prompt,
    operator_catalogue,
    resolve_operators,
    template_source,
)
from sf_workflows.generator.validate import (
    ALLOWED_IMPORTS,
    ALLOWED_OPERATORS,
    DEFAULT_OPERATORS,
    Issue,
    ValidationReport,
    validate_workflow,
)

__all__ = [
    "ALLOWED_IMPORTS",
    "ALLOWED_OPERATORS",
    "DEFAULT_OPERATORS",
    "Issue",
    "ValidationReport",
    "build_generator_prompt",
    "operator_catalogue",
    "parse_workflow",
    "resolve_operators",
    "template_source",
    "validate_workflow",
]
