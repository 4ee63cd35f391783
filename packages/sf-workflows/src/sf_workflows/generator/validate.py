"""Static checks of workflow source, with messages a generator can learn from.

**Validation is advice; the sandbox is the security boundary.** Validation exists to give
early, specific feedback (and to save a sandbox run on hopeless code); a determined workflow
can reach anything Python reaches at run time (``m = asyncio.base_events; m.os``), and only
the sandbox contains that. What the checks do catch statically: attribute paths from an
imported module to a module outside the allowlist (``asyncio.base_events.os`` reaches ``os``)
and ``from asyncio import base_events``-style imports of such modules, resolved against the
real standard-library modules. Checks: it parses; it defines ``class Workflow``
with ``__init__(self, config, problem)`` and ``async def run_workflow(self)`` that returns;
it uses only known operators allowed for the task, called with valid arguments; it imports only
allowlisted modules and not ``operator``/``create`` (they are provided); it uses no
``exec``/``eval``/``open``/dunder tricks; no string in it copies the problem text.

The tables the checks read are in ``_rules`` (re-exported here), the attribute-path check in
``_module_paths`` and the checks of ``class Workflow`` itself in ``_workflow_class``.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sf_workflows.generator._module_paths import check_module_paths
from sf_workflows.generator._rules import (
    ALLOWED_IMPORTS,
    ALLOWED_OPERATORS,
    DEFAULT_OPERATORS,
    FORBIDDEN_CALLS,
    LEAK_NGRAM,
    MAX_SOURCE_CHARS,
    PROVIDED_NAMES,
    Issue,
)
from sf_workflows.generator._workflow_class import check_workflow_class, operator_ref
from sf_workflows.operators import OPERATORS
from sf_workflows.operators._workflow import strip_scoreflow_imports

__all__ = [
    "ALLOWED_IMPORTS",
    "ALLOWED_OPERATORS",
    "DEFAULT_OPERATORS",
    "FORBIDDEN_CALLS",
    "LEAK_NGRAM",
    "MAX_SOURCE_CHARS",
    "PROVIDED_NAMES",
    "Issue",
    "ValidationReport",
    "validate_workflow",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class ValidationReport:
    """All findings for one source; :attr:`ok` when there are none."""

    issues: tuple[Issue, ...] = ()
    operators_used: tuple[str, ...] = ()
    """Operator classes the workflow instantiates, in order of first use."""

    @property
    def ok(self) -> bool:
        """True when the workflow passed every check."""
        return not self.issues

    @property
    def message(self) -> str:
        """One line listing every issue (empty when ok)."""
        return "; ".join(str(i) for i in self.issues)


def validate_workflow(
    source: str,
    task_type: str | None = None,
    *,
    operators: Sequence[str] | None = None,
    problem_text: str | None = None,
) -> ValidationReport:
    """Check workflow source statically.

    Args:
        source: The workflow code.
        task_type: ``code``, ``math`` or ``qa``; selects the allowed operators when
            ``operators`` is not given (``None``: any known operator).
        operators: Operator class names allowed.
        problem_text: The problem the workflow was generated for; strings copying it are flagged.

    Returns:
        The report (issues in line order, each once); never raises for bad source.
    """
    allowed = _allowed_operators(task_type, operators)
    if len(source) > MAX_SOURCE_CHARS:
        return ValidationReport(
            issues=(Issue(f"the workflow is {len(source)} characters, over {MAX_SOURCE_CHARS}"),)
        )
    try:
        tree = ast.parse(strip_scoreflow_imports(source))
    except SyntaxError as exc:
        return ValidationReport(issues=(Issue(f"syntax error: {exc.msg}", exc.lineno),))
    issues: list[Issue] = []
    check_module_paths(tree, issues)
    workflow = _check_top_level(tree, issues)
    _check_names(tree, issues)
    used = _check_operator_refs(tree, allowed, issues)
    if workflow is not None:
        check_workflow_class(workflow, issues)
    if problem_text:
        _check_leaks(tree, problem_text, issues)
    return ValidationReport(issues=_in_line_order(issues), operators_used=tuple(used))


def _allowed_operators(task_type: str | None, operators: Sequence[str] | None) -> tuple[str, ...]:
    """The operators a workflow may use: ``operators``, else the task type's, else every one."""
    if operators is not None:
        return tuple(operators)
    if task_type in ALLOWED_OPERATORS:
        return ALLOWED_OPERATORS[task_type]
    return tuple(OPERATORS)


def _check_top_level(tree: ast.Module, issues: list[Issue]) -> ast.ClassDef | None:
    """Flag module-level statements other than definitions; return ``class Workflow`` (the last one)."""
    workflow: ast.ClassDef | None = None
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == "Workflow":
            workflow = node
        elif isinstance(
            node, ast.Import | ast.ImportFrom | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef
        ):
            pass
        elif isinstance(node, ast.Assign | ast.AnnAssign) or (
            isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
        ):
            pass
        else:
            issues.append(
                Issue(
                    "only imports, constants, functions and classes may appear outside class Workflow",
                    node.lineno,
                )
            )
    if workflow is None:
        issues.append(Issue("the source must define class Workflow (see the template)"))
    return workflow


def _check_names(tree: ast.Module, issues: list[Issue]) -> None:
    """Flag, anywhere in the source, imports outside the allowlist and dangerous names."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                _check_import(alias.name, alias.asname, node.lineno, issues)
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                issues.append(Issue("relative imports are not allowed", node.lineno))
            elif any(a.name in PROVIDED_NAMES or a.asname in PROVIDED_NAMES for a in node.names):
                issues.append(Issue("do not import operator or create: both are provided", node.lineno))
            else:
                _check_import(module, None, node.lineno, issues)
        elif (
            isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in FORBIDDEN_CALLS
        ):
            issues.append(
                Issue(f"{node.func.id}() is not allowed in a workflow; use the operators", node.lineno)
            )
        elif isinstance(node, ast.Attribute) and node.attr.startswith("__") and node.attr != "__init__":
            issues.append(Issue(f"attribute {node.attr} is not allowed", node.lineno))
        elif (
            isinstance(node, ast.Name)
            and node.id.startswith("__")
            and node.id.endswith("__")
            and node.id != "__name__"
        ):
            issues.append(Issue(f"name {node.id} is not allowed", node.lineno))
        elif isinstance(node, ast.Global | ast.Nonlocal):
            issues.append(Issue("global/nonlocal statements are not allowed", node.lineno))


def _check_import(module: str, asname: str | None, line: int, issues: list[Issue]) -> None:
    root = module.split(".")[0]
    if root in PROVIDED_NAMES or asname in PROVIDED_NAMES:
        issues.append(Issue("do not import operator or create: both are provided", line))
    elif root not in ALLOWED_IMPORTS:
        issues.append(
            Issue(
                f"import of {module!r} is not allowed; workflows may import only "
                f"{', '.join(sorted(ALLOWED_IMPORTS))}",
                line,
            )
        )


def _check_operator_refs(tree: ast.Module, allowed: tuple[str, ...], issues: list[Issue]) -> list[str]:
    """Flag ``operator.X`` references to unknown or disallowed operators.

    Returns:
        The allowed operators referenced, in order of first use.
    """
    used: list[str] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        name = operator_ref(node)
        if name is None:
            continue
        if name not in OPERATORS:
            issues.append(
                Issue(f"unknown operator operator.{name}; available: {', '.join(allowed)}", node.lineno)
            )
        elif name not in allowed:
            issues.append(
                Issue(
                    f"operator.{name} is not available for this task; available: {', '.join(allowed)}",
                    node.lineno,
                )
            )
        elif name not in used:
            used.append(name)
    return used


def _check_leaks(tree: ast.Module, problem_text: str, issues: list[Issue]) -> None:
    """Flag string literals that copy the problem text (:data:`LEAK_NGRAM` words in a row).

    A problem shorter than that counts as copied when all of it (4 words at least) appears.
    """
    grams, whole = _leak_ngrams(problem_text)
    for text, line in _string_constants(tree):
        words = _words(text)
        hit = any(tuple(words[i : i + LEAK_NGRAM]) in grams for i in range(len(words) - LEAK_NGRAM + 1))
        if not hit and whole is not None:
            n = len(whole)
            hit = any(tuple(words[i : i + n]) == whole for i in range(len(words) - n + 1))
        if hit:
            excerpt = text.strip().replace("\n", " ")[:60]
            issues.append(
                Issue(
                    f"a string copies the problem text ({excerpt!r}); "
                    "the workflow must not contain problem-specific "
                    "information: operators already receive the problem",
                    line,
                )
            )


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def _leak_ngrams(problem_text: str) -> tuple[set[tuple[str, ...]], tuple[str, ...] | None]:
    words = _words(problem_text)
    if len(words) >= LEAK_NGRAM:
        return {tuple(words[i : i + LEAK_NGRAM]) for i in range(len(words) - LEAK_NGRAM + 1)}, None
    return set(), (tuple(words) if len(words) >= 4 else None)


def _string_constants(tree: ast.AST) -> Iterable[tuple[str, int]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.value, node.lineno


def _in_line_order(issues: list[Issue]) -> tuple[Issue, ...]:
    """``issues`` without repeats, sorted by line (stable: same-line issues keep their order)."""
    unique: list[Issue] = []
    for issue in issues:
        if issue not in unique:
            unique.append(issue)
    unique.sort(key=lambda i: i.line or 0)
    return tuple(unique)
